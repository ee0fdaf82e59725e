package fakeplayfab

import "net/http"

// routes lists every route the fake serves. Methods are checked by the
// handlers rather than the mux patterns, so that a wrong method is answered
// with PlayFab's error envelope instead of the mux's plain text.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/Authentication/GetEntityToken", allow(http.MethodPost, s.handleGetEntityToken()))
	mux.Handle("/Party/RequestPartyService", allow(http.MethodPost, s.handleRequestPartyService()))
	mux.Handle("/_fake/stats", allow(http.MethodGet, s.handleStats()))
	mux.Handle("/_fake/parties/{partyId}", allow(http.MethodGet, s.handleParty()))
	mux.Handle("/_fake/faults", s.handleFaults())
	mux.Handle("/_fake/reset", allow(http.MethodPost, s.handleReset()))
	mux.Handle("/", handleNotFound())
	return mux
}
