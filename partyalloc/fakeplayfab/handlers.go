package fakeplayfab

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	mathrand "math/rand/v2"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// entityKey is PlayFab's EntityKey.
type entityKey struct {
	ID   string `json:"Id"`
	Type string `json:"Type"`
}

// getEntityTokenRequest is GetEntityToken's optional body.
type getEntityTokenRequest struct {
	Entity     *entityKey        `json:"Entity"`
	CustomTags map[string]string `json:"CustomTags"`
}

// handleGetEntityToken issues an entity token to a caller holding the title
// secret key, or a fresh one to a caller holding a valid entity token.
// Tokens issued before stay valid until their own expiry.
func (s *Server) handleGetEntityToken() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.stats.GetEntityToken++
		s.mu.Unlock()

		var entity entityKey
		switch {
		case r.Header.Get(headerSecretKey) != "":
			if subtle.ConstantTimeCompare([]byte(r.Header.Get(headerSecretKey)), []byte(s.secretKey)) != 1 {
				s.refuse(w, r, newAPIError(http.StatusUnauthorized, errNotAuthenticated, codeNotAuthenticated,
					"The X-SecretKey header does not hold this title's secret key"))
				return
			}
			entity = entityKey{ID: s.titleID, Type: entityTypeTitle}
		case r.Header.Get(headerEntityToken) != "":
			tok, apiErr := s.lookupToken(r.Header.Get(headerEntityToken))
			if apiErr != nil {
				s.refuse(w, r, apiErr)
				return
			}
			entity = tok.entity
		default:
			s.refuse(w, r, newAPIError(http.StatusUnauthorized, errNotAuthenticated, codeNotAuthenticated,
				"An X-SecretKey or X-EntityToken header is required"))
			return
		}

		var req getEntityTokenRequest
		if apiErr := decodeBody(r, &req, true); apiErr != nil {
			s.refuse(w, r, apiErr)
			return
		}
		if req.Entity != nil {
			// With the secret key a server may ask for another entity's
			// token; this lets tests produce a player's token.
			if req.Entity.ID == "" || req.Entity.Type == "" {
				s.refuse(w, r, invalidParams(map[string][]string{"Entity": {"The Entity field requires both Id and Type."}}))
				return
			}
			if r.Header.Get(headerSecretKey) != "" && req.Entity.Type != entityTypeTitle {
				entity = *req.Entity
			}
		}

		value, expires := s.issueToken(entity)
		s.logger.Debug("fakeplayfab issued entity token", "entity_type", entity.Type, "expires", expires)
		writeData(w, struct {
			EntityToken     string `json:"EntityToken"`
			TokenExpiration string `json:"TokenExpiration"`
			Entity          any    `json:"Entity"`
		}{
			EntityToken:     value,
			TokenExpiration: expires.UTC().Format("2006-01-02T15:04:05.000Z07:00"), // milliseconds, as PlayFab sends
			Entity: struct {
				ID         string `json:"Id"`
				Type       string `json:"Type"`
				TypeString string `json:"TypeString"`
			}{entity.ID, entity.Type, entity.Type},
		})
	})
}

// issueToken records a new random token for entity.
func (s *Server) issueToken(entity entityKey) (string, time.Time) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	value := base64.RawURLEncoding.EncodeToString(b)
	now := s.now()
	// Whole milliseconds, as the reply carries, so the fake and its client
	// agree on the instant of expiry.
	expires := now.Add(s.tokenLifetime).Truncate(time.Millisecond)

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tokens) >= maxTokens {
		for v, t := range s.tokens {
			if !now.Before(t.expires) {
				delete(s.tokens, v)
			}
		}
	}
	s.tokens[value] = token{entity: entity, expires: expires}
	return value, expires
}

// lookupToken returns what an entity token grants, or the 401 to answer.
func (s *Server) lookupToken(value string) (token, *apiError) {
	if value == "" {
		return token{}, newAPIError(http.StatusUnauthorized, errEntityTokenMissing, codeEntityTokenMissing,
			"The X-EntityToken header is required")
	}
	s.mu.Lock()
	tok, ok := s.tokens[value]
	s.mu.Unlock()
	switch {
	case !ok:
		return token{}, newAPIError(http.StatusUnauthorized, errEntityTokenInvalid, codeEntityTokenInvalid,
			"The entity token is not valid")
	case !s.now().Before(tok.expires):
		return token{}, newAPIError(http.StatusUnauthorized, errEntityTokenExpired, codeEntityTokenExpired,
			"The entity token has expired")
	}
	return tok, nil
}

// handleRequestPartyService creates a Party network: authentication, then
// validation, then injected faults, then the party.
func (s *Server) handleRequestPartyService() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.stats.RequestPartyService++
		s.mu.Unlock()

		tok, apiErr := s.lookupToken(r.Header.Get(headerEntityToken))
		if apiErr != nil {
			s.refuse(w, r, apiErr)
			return
		}
		if tok.entity.Type != entityTypeTitle && tok.entity.Type != entityTypeGameServer {
			s.refuse(w, r, newAPIError(http.StatusForbidden, errInvalidEntityType, codeInvalidEntityType,
				"RequestPartyService accepts title and game_server entity tokens only"))
			return
		}
		var req partyRequest
		if apiErr := decodeBody(r, &req, false); apiErr != nil {
			s.refuse(w, r, apiErr)
			return
		}
		if details := req.validate(); len(details) > 0 {
			s.refuse(w, r, invalidParams(details))
			return
		}

		partyID := req.partyID()
		recorded, _ := json.Marshal(req)
		s.mu.Lock()
		if partyID != "" {
			s.stats.Parties[partyID]++
			s.requests[partyID] = recorded
		}
		faults := s.faults
		s.mu.Unlock()

		if d := faults.delay(); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				s.logger.Debug("fakeplayfab client gave up during injected latency", "party_id", partyID)
				return
			}
		}

		fault := faults.draw()
		p, apiErr := s.createParty(req, fault)
		if apiErr != nil {
			s.logger.Debug("fakeplayfab injected a failure", "party_id", partyID, "error", apiErr.Error, "status", apiErr.Code)
			writeError(w, apiErr)
			return
		}
		if fault == faultDrop {
			s.logger.Debug("fakeplayfab dropping the reply", "party_id", p.PartyID)
			dropConnection(w)
			return
		}
		s.logger.Debug("fakeplayfab created party", "party_id", p.PartyID)
		writeData(w, p)
	})
}

// createParty applies an injected error or throttle, or creates (or, in
// ModeDedupe, finds) the party and counts the success.
func (s *Server) createParty(req partyRequest, fault fault) (party, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A call without a PartyId gets its id only below; its faults are
	// counted in the totals alone.
	requested := req.partyID()
	switch fault {
	case faultThrottle:
		s.stats.Throttled++
		if requested != "" {
			s.stats.ThrottledByParty[requested]++
		}
		retryAfter := s.faults.RetryAfter
		if retryAfter <= 0 {
			retryAfter = defaultThrottleRetryAfter
		}
		return party{}, throttled(retryAfter)
	case faultError:
		s.stats.Errors++
		if requested != "" {
			s.stats.ErrorsByParty[requested]++
		}
		s.errorSeq++
		if s.errorSeq%2 == 1 {
			return party{}, newAPIError(http.StatusServiceUnavailable, errServiceUnavailable, codeServiceUnavailable,
				"The service is temporarily unavailable")
		}
		return party{}, newAPIError(http.StatusInternalServerError, errInternalServerError, codeInternalServerError,
			"An internal server error occurred")
	case faultDrop:
		s.stats.Dropped++
		if requested != "" {
			s.stats.DroppedByParty[requested]++
		}
	}

	partyID := req.partyID()
	p, seen := s.parties[partyID]
	if partyID == "" || !seen || s.mode == ModeNewParty {
		if partyID == "" {
			partyID = uuid.NewString()
		}
		region := req.PreferredRegions[0]
		invitationID := req.invitationIdentifier()
		if invitationID == "" {
			invitationID = uuid.NewString()
		}
		p = party{
			PartyID:                     partyID,
			SerializedNetworkDescriptor: EncodeDescriptor(uuid.MustParse(partyID), uuid.New(), region),
			InvitationID:                invitationID,
		}
		s.parties[partyID] = p
		s.stats.PartiesCreated++
	}
	s.stats.Successes[p.PartyID]++
	return p, nil
}

// dropConnection closes the client's connection without a reply. Where the
// connection cannot be taken over (HTTP/2), the handler aborts instead,
// which resets the stream.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// refuse logs and sends a refusal.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, e *apiError) {
	s.logger.Debug("fakeplayfab refused a call", "path", r.URL.Path, "status", e.Code, "error", e.Error)
	writeError(w, e)
}

// decodeBody decodes a JSON object body into v. An empty body is an empty
// object when emptyOK. Text that is not JSON is InvalidContentType; JSON of
// the wrong shape is InvalidParams naming the field.
func decodeBody(r *http.Request, v any, emptyOK bool) *apiError {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxRequestBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return newAPIError(http.StatusRequestEntityTooLarge, errBodyTooLarge, codeBodyTooLarge, "The request body is too large")
		}
		return newAPIError(http.StatusBadRequest, errInvalidRequest, codeInvalidRequest, "The request body could not be read")
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || bytes.Equal(body, []byte("null")) {
		if emptyOK {
			return nil
		}
		return invalidParams(map[string][]string{"request": {"A request body is required."}})
	}
	if !json.Valid(body) {
		return newAPIError(http.StatusBadRequest, errInvalidContentType, codeInvalidContentType,
			"The request body is not valid JSON")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			field := lastField(typeErr.Field)
			return invalidParams(map[string][]string{field: {"The field " + field + " has a value of the wrong type."}})
		}
		return invalidParams(map[string][]string{"request": {"The request is invalid: " + err.Error()}})
	}
	return nil
}

// handleStats answers the call counts.
// handleParty serves GET /_fake/parties/{partyId}: the party created for
// that id and the latest valid request that named it.
func (s *Server) handleParty() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("partyId")
		s.mu.Lock()
		p, created := s.parties[id]
		req, requested := s.requests[id]
		s.mu.Unlock()
		if !requested {
			writeError(w, newAPIError(http.StatusNotFound, errInvalidAPIEndpoint, codeInvalidAPIEndpoint, "no request named this PartyId"))
			return
		}
		out := map[string]any{"request": req}
		if created {
			out["party"] = p
		}
		writeJSON(w, http.StatusOK, out)
	})
}

func (s *Server) handleStats() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
}

// handleFaults answers the current faults on GET; on POST it first updates
// the fields present in the body and keeps the others.
func (s *Server) handleFaults() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, s.Faults())
		case http.MethodPost:
			f := s.Faults()
			if apiErr := decodeBody(r, &f, true); apiErr != nil {
				writeError(w, apiErr)
				return
			}
			if details := f.validate(); len(details) > 0 {
				writeError(w, invalidParams(details))
				return
			}
			s.SetFaults(f)
			writeJSON(w, http.StatusOK, f)
		default:
			w.Header().Set("Allow", "GET, POST")
			writeError(w, newAPIError(http.StatusMethodNotAllowed, errInvalidRequest, codeInvalidRequest,
				"Method "+r.Method+" is not allowed; use GET or POST"))
		}
	})
}

// handleReset clears the call counts.
func (s *Server) handleReset() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		writeJSON(w, http.StatusOK, s.Stats())
	})
}

// fault is what befalls one call.
type fault int

const (
	faultNone fault = iota
	faultThrottle
	faultError
	faultDrop
)

// draw picks the fault for one call: one uniform number partitioned by the
// rates, throttling first, then errors, then dropped replies.
func (f Faults) draw() fault {
	x := mathrand.Float64()
	switch {
	case x < f.ThrottleRate:
		return faultThrottle
	case x < f.ThrottleRate+f.ErrorRate:
		return faultError
	case x < f.ThrottleRate+f.ErrorRate+f.DropResponseRate:
		return faultDrop
	}
	return faultNone
}

// delay is Latency ± Jitter, uniform, and never negative.
func (f Faults) delay() time.Duration {
	d := f.Latency
	if f.Jitter > 0 {
		d += time.Duration((mathrand.Float64()*2 - 1) * float64(f.Jitter))
	}
	return max(d, 0)
}

// newID returns a random GUID, as PlayFab's X-RequestId values are.
func newID() string { return uuid.NewString() }
