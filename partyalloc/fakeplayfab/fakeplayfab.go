// Package fakeplayfab is a stand-in for the two PlayFab APIs lobbyd uses,
// Authentication/GetEntityToken and Party/RequestPartyService. It speaks
// their wire contract (envelope, headers, error names and codes, request
// validation), so the real client and unmodified PlayFab SDKs can be pointed
// at it. It injects latency, errors, throttling and lost replies on demand,
// and counts the calls it received per PartyId so that tests can prove a
// match was allocated once.
//
// Use it in-process as an http.Handler (for example under httptest), or run
// it as the cmd/fakeplayfab binary. Besides PlayFab's routes it serves
// GET /_fake/stats, GET and POST /_fake/faults and POST /_fake/reset.
package fakeplayfab

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Mode says what RequestPartyService does with a PartyId it has seen before.
type Mode int

const (
	// ModeDedupe answers a repeated PartyId with the party created the
	// first time: same descriptor, same invitation id.
	ModeDedupe Mode = iota
	// ModeNewParty creates a new network on every call, echoing the
	// PartyId but with a new descriptor, as an idempotency-unaware service
	// would.
	ModeNewParty
)

// String returns the mode's flag spelling, "dedupe" or "new".
func (m Mode) String() string {
	switch m {
	case ModeDedupe:
		return "dedupe"
	case ModeNewParty:
		return "new"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses "dedupe" or "new" (case-insensitive).
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(s) {
	case "dedupe":
		return ModeDedupe, nil
	case "new":
		return ModeNewParty, nil
	}
	return 0, fmt.Errorf("unknown mode %q: want dedupe or new", s)
}

// Config configures a Server. Zero-value fields get defaults.
type Config struct {
	// TitleID is the title the fake serves; it names the title entity of
	// the tokens it issues. Default "FAKE".
	TitleID string
	// SecretKey is the only X-SecretKey GetEntityToken accepts. Default
	// "fake-secret". It is never logged.
	SecretKey string
	// Mode is ModeDedupe (the default) or ModeNewParty.
	Mode Mode
	// TokenLifetime is how long an issued entity token is valid. Default 24h.
	TokenLifetime time.Duration
	// Faults are the faults injected from the start; see SetFaults.
	Faults Faults
	// Logger receives one debug line per call. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock used for token issue and expiry, so that tests can
	// expire tokens without waiting. Default time.Now.
	Now func() time.Time
}

// Faults are the failures injected into RequestPartyService calls that pass
// authentication and validation. The rates are shares of calls in [0, 1];
// throttling, errors and dropped replies are drawn from one uniform number,
// so their shares add up (a call suffers at most one of them).
type Faults struct {
	// Latency and Jitter delay every call by Latency ± Jitter (uniform),
	// or until the client gives up.
	Latency, Jitter time.Duration
	// ErrorRate is the share of calls answered 503 ServiceUnavailable or
	// 500 InternalServerError, alternately.
	ErrorRate float64
	// ThrottleRate is the share of calls answered 429
	// APIClientRequestRateLimitExceeded, with retryAfterSeconds in the body
	// and a Retry-After header.
	ThrottleRate float64
	// RetryAfter is the wait throttled replies ask for. Default 1s. A
	// fraction of a second is sent as a fractional retryAfterSeconds; the
	// Retry-After header, whole seconds by HTTP's rules, is rounded up.
	RetryAfter time.Duration
	// DropResponseRate is the share of calls whose party IS created and
	// counted as a success, but whose connection is then closed without a
	// reply: the client cannot tell whether the call worked.
	DropResponseRate float64
}

// Stats counts the calls a Server received.
type Stats struct {
	// GetEntityToken counts every POST to GetEntityToken, including the
	// ones refused.
	GetEntityToken int `json:"getEntityToken"`
	// RequestPartyService counts every POST to RequestPartyService,
	// including the ones refused.
	RequestPartyService int `json:"requestPartyService"`
	// Parties counts, per PartyId, the RequestPartyService calls that
	// passed authentication and validation and carried that PartyId,
	// whatever fault was then injected.
	Parties map[string]int `json:"parties"`
	// Successes counts, per PartyId, the calls that created or returned a
	// party, including those whose reply was then dropped. A call without
	// a PartyId is counted under the id generated for it.
	Successes map[string]int `json:"successes"`
	// PartiesCreated counts the networks created: in ModeDedupe one per
	// distinct PartyId, in ModeNewParty one per successful call.
	PartiesCreated int `json:"partiesCreated"`
	// Throttled, Errors and Dropped count the injected faults.
	Throttled int `json:"throttled"`
	Errors    int `json:"errors"`
	Dropped   int `json:"dropped"`
	// ThrottledByParty, ErrorsByParty and DroppedByParty count the same
	// faults per PartyId, so a checker can tell a second success that
	// followed a dropped reply (the client could not know the first one
	// worked) from a genuine duplicate call.
	ThrottledByParty map[string]int `json:"throttledByParty"`
	ErrorsByParty    map[string]int `json:"errorsByParty"`
	DroppedByParty   map[string]int `json:"droppedByParty"`
}

// Server is the fake PlayFab: an http.Handler safe for concurrent use.
type Server struct {
	titleID       string
	secretKey     string
	mode          Mode
	tokenLifetime time.Duration
	logger        *slog.Logger
	now           func() time.Time
	mux           *http.ServeMux

	mu       sync.Mutex
	faults   Faults
	tokens   map[string]token           // entity token -> what it grants
	parties  map[string]party           // PartyId -> the latest network created for it
	requests map[string]json.RawMessage // PartyId -> the latest valid request for it
	stats    Stats
	errorSeq int // alternates injected errors between 503 and 500
}

// token is an issued entity token.
type token struct {
	entity  entityKey
	expires time.Time
}

// party is a created network.
type party struct {
	PartyID                     string `json:"PartyId"`
	SerializedNetworkDescriptor string `json:"SerializedNetworkDescriptor"`
	InvitationID                string `json:"InvitationId"`
}

// maxTokens bounds the token table; expired tokens are pruned beyond it.
// Below it they are kept, so that an expired token is told apart from an
// unknown one.
const maxTokens = 10000

// New returns a Server configured by cfg.
func New(cfg Config) *Server {
	s := &Server{
		titleID:       cfg.TitleID,
		secretKey:     cfg.SecretKey,
		mode:          cfg.Mode,
		tokenLifetime: cfg.TokenLifetime,
		logger:        cfg.Logger,
		now:           cfg.Now,
		faults:        cfg.Faults,
		tokens:        make(map[string]token),
		parties:       make(map[string]party),
		requests:      make(map[string]json.RawMessage),
		stats:         newStats(),
	}
	if s.titleID == "" {
		s.titleID = "FAKE"
	}
	if s.secretKey == "" {
		s.secretKey = "fake-secret"
	}
	if s.tokenLifetime <= 0 {
		s.tokenLifetime = 24 * time.Hour
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.mux = s.routes()
	return s
}

func newStats() Stats {
	return Stats{
		Parties: make(map[string]int), Successes: make(map[string]int),
		ThrottledByParty: make(map[string]int), ErrorsByParty: make(map[string]int), DroppedByParty: make(map[string]int),
	}
}

// ServeHTTP answers PlayFab's routes and the /_fake/ control routes. Every
// reply is JSON and carries an X-RequestId header.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	// Set as PlayFab spells it; Header.Set would send "X-Requestid".
	w.Header()["X-RequestId"] = []string{newID()}
	s.mux.ServeHTTP(w, r)
}

// SetFaults replaces the injected faults; calls already delayed keep theirs.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
	s.logger.Info("fakeplayfab faults set", "faults", f.String())
}

// Faults returns the faults currently injected.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Stats returns a copy of the call counts.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Parties = maps.Clone(s.stats.Parties)
	st.Successes = maps.Clone(s.stats.Successes)
	st.ThrottledByParty = maps.Clone(s.stats.ThrottledByParty)
	st.ErrorsByParty = maps.Clone(s.stats.ErrorsByParty)
	st.DroppedByParty = maps.Clone(s.stats.DroppedByParty)
	return st
}

// Reset clears the call counts. Issued tokens and created parties stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = newStats()
}

// LastRequest returns the body of the latest valid RequestPartyService call
// for partyID (as the fake understood it, re-encoded), so tests can check
// what a client sent: network settings, regions, invitation.
func (s *Server) LastRequest(partyID string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[partyID]
	return r, ok
}

// Descriptor returns the SerializedNetworkDescriptor of the latest network
// created for partyID, and whether there is one.
func (s *Server) Descriptor(partyID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.parties[partyID]
	return p.SerializedNetworkDescriptor, ok
}
