package lobby

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/lobbyd/lobbyd/internal/domain"
)

// Identity is who a verified token says the player is.
type Identity struct {
	PlayerID string
	Name     string
	// PlayFabEntity is the player's title_player_account entity id, if any.
	PlayFabEntity string
	Expires       time.Time
	// Skill is the token's claim "skill", if it has one: the rating a queue
	// with skill.source token matches on, which the client cannot change.
	Skill *float64
	// Attrs is the token's claim "attrs": matchmaking attributes of
	// source token, by name.
	Attrs map[string]domain.AttrValue
}

// ErrBadToken means a token is missing, malformed, expired or wrongly
// signed. Its message never includes the token or the secret.
var ErrBadToken = errors.New("invalid token")

// Authenticator verifies and, in development mode, issues the HS256 JWTs
// that players present at the handshake.
type Authenticator struct {
	// Secret is the HS256 signing secret shared with the game's backend.
	Secret []byte
	// Leeway tolerates clock skew on exp and nbf. Default 0.
	Leeway time.Duration
	// MaxLifetime, when set, refuses tokens that live longer: from iat (or,
	// without iat, from now) to exp. A leaked long-lived token then cannot
	// be used for long. Default 0: any lifetime.
	MaxLifetime time.Duration
	// SkillMin and SkillMax, when either is set, bound the skill claim (as
	// the gateway's bound a client's skill): a token beyond them is
	// refused, and the dev token endpoint does not issue one. Unset: any
	// finite number.
	SkillMin, SkillMax float64
}

type claims struct {
	Name     string          `json:"name,omitempty"`
	PfEntity string          `json:"pfEntity,omitempty"`
	Skill    json.RawMessage `json:"skill,omitempty"`
	Attrs    json.RawMessage `json:"attrs,omitempty"`
	jwt.RegisteredClaims
}

// Caps on a token's attrs claim, so that a token cannot make a ticket
// large: at most maxTokenAttrs attributes, each an attribute name a queue
// file accepts, with a string (or each of at most maxTokenAttrs strings)
// of at most domain.MaxRegionBytes bytes.
const maxTokenAttrs = 32

// matchClaims reads the claims skill and attrs. Its errors name the
// claim, never its value; Verify wraps them in ErrBadToken.
func (a *Authenticator) matchClaims(c claims) (skill *float64, attrs map[string]domain.AttrValue, err error) {
	if len(c.Skill) > 0 && string(c.Skill) != "null" {
		var v float64
		if json.Unmarshal(c.Skill, &v) != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, nil, errors.New("skill must be a number")
		}
		if a.SkillMin != 0 || a.SkillMax != 0 {
			if msg := skillError(v, a.SkillMin, a.SkillMax); msg != "" {
				return nil, nil, errors.New(msg)
			}
		}
		skill = &v
	}
	if len(c.Attrs) == 0 || string(c.Attrs) == "null" {
		return skill, nil, nil
	}
	if err := json.Unmarshal(c.Attrs, &attrs); err != nil {
		return nil, nil, errors.New("attrs must be an object of strings, numbers and arrays of strings")
	}
	if len(attrs) > maxTokenAttrs {
		return nil, nil, fmt.Errorf("attrs may hold at most %d attributes", maxTokenAttrs)
	}
	for name, v := range attrs {
		if !domain.ValidName(name) {
			return nil, nil, errors.New("attrs: names must be 1-64 letters, digits, '_', '.' or '-'")
		}
		if err := checkTokenAttr(v); err != nil {
			return nil, nil, fmt.Errorf("attrs.%s %w", name, err)
		}
	}
	return skill, attrs, nil
}

func checkTokenAttr(v domain.AttrValue) error {
	switch v.Type {
	case domain.AttrString:
		if len(v.Mixed) > 0 {
			return errors.New("must be a string, a number or an array of strings")
		}
		if len(v.Str) > domain.MaxRegionBytes || !utf8.ValidString(v.Str) {
			return fmt.Errorf("must be valid UTF-8 of at most %d bytes", domain.MaxRegionBytes)
		}
	case domain.AttrStrings:
		if len(v.Strs) > maxTokenAttrs {
			return fmt.Errorf("may hold at most %d values", maxTokenAttrs)
		}
		for _, s := range v.Strs {
			if len(s) > domain.MaxRegionBytes || !utf8.ValidString(s) {
				return fmt.Errorf("values must be valid UTF-8 of at most %d bytes", domain.MaxRegionBytes)
			}
		}
	case domain.AttrNumber:
		if math.IsNaN(v.Num) || math.Abs(v.Num) > domain.MaxAttrNumber {
			return fmt.Errorf("must be a number from %g to %g", -domain.MaxAttrNumber, domain.MaxAttrNumber)
		}
	default:
		return errors.New("must be a string, a number or an array of strings")
	}
	return nil
}

// Verify checks token and returns the identity it carries.
func (a *Authenticator) Verify(token string) (Identity, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.Secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(), jwt.WithLeeway(a.Leeway))
	if err != nil {
		switch {
		case errors.Is(err, jwt.ErrTokenExpired):
			return Identity{}, fmt.Errorf("%w: expired", ErrBadToken)
		case errors.Is(err, jwt.ErrTokenNotValidYet):
			return Identity{}, fmt.Errorf("%w: not yet valid (nbf is in the future)", ErrBadToken)
		case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
			return Identity{}, fmt.Errorf("%w: not yet valid (iat is in the future)", ErrBadToken)
		case errors.Is(err, jwt.ErrTokenSignatureInvalid):
			return Identity{}, fmt.Errorf("%w: bad signature", ErrBadToken)
		case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
			return Identity{}, fmt.Errorf("%w: exp is required", ErrBadToken)
		default:
			return Identity{}, fmt.Errorf("%w: malformed", ErrBadToken)
		}
	}
	if !domain.ValidPlayerID(c.Subject) {
		return Identity{}, fmt.Errorf("%w: sub must be 1-128 printable characters without spaces or braces", ErrBadToken)
	}
	if a.MaxLifetime > 0 {
		from := time.Now()
		if c.IssuedAt != nil {
			from = c.IssuedAt.Time
		}
		if c.ExpiresAt.Sub(from) > a.MaxLifetime+a.Leeway {
			return Identity{}, fmt.Errorf("%w: lives longer than the %v this server accepts", ErrBadToken, a.MaxLifetime)
		}
	}
	if len(c.PfEntity) > maxEntityBytes {
		return Identity{}, fmt.Errorf("%w: pfEntity must be at most %d bytes", ErrBadToken, maxEntityBytes)
	}
	skill, attrs, err := a.matchClaims(c)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	id := Identity{PlayerID: c.Subject, Name: CleanName(c.Name), PlayFabEntity: c.PfEntity, Expires: c.ExpiresAt.Time,
		Skill: skill, Attrs: attrs}
	if id.Name == "" {
		id.Name = id.PlayerID
	}
	return id, nil
}

// MaxNameRunes is the longest display name, in characters (Unicode code
// points).
const MaxNameRunes = 32

// maxEntityBytes bounds a token's pfEntity; PlayFab entity ids are 16 hex
// characters.
const maxEntityBytes = 64

// CleanName makes a token's display name safe to show to other players:
// control characters and bidirectional overrides are dropped, runs of
// spaces become one, and the result is cut to MaxNameRunes characters.
// Invalid UTF-8 is replaced (one U+FFFD per run of bad bytes). A name that
// cleans to nothing is empty (the caller falls back to the player id).
func CleanName(name string) string {
	var b strings.Builder
	n, space := 0, false
	for _, r := range strings.ToValidUTF8(name, "\uFFFD") {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			continue
		}
		if space {
			if n+1 >= MaxNameRunes {
				break
			}
			b.WriteByte(' ')
			n, space = n+1, false
		}
		if n == MaxNameRunes {
			break
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// Issue signs a token for id that expires after ttl. It refuses a player
// id that Verify would refuse or read back differently.
func (a *Authenticator) Issue(id Identity, ttl time.Duration) (string, error) {
	if !domain.ValidPlayerID(id.PlayerID) {
		return "", errors.New("issue token: the player id must be 1-128 printable characters without spaces or braces")
	}
	now := time.Now()
	c := claims{Name: id.Name, PfEntity: id.PlayFabEntity, RegisteredClaims: jwt.RegisteredClaims{
		Subject: id.PlayerID, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	if id.Skill != nil {
		b, err := json.Marshal(*id.Skill)
		if err != nil {
			return "", fmt.Errorf("issue token: skill: %w", err)
		}
		c.Skill = b
	}
	if len(id.Attrs) > 0 {
		b, err := json.Marshal(id.Attrs)
		if err != nil {
			return "", fmt.Errorf("issue token: attrs: %w", err)
		}
		c.Attrs = b
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.Secret)
}

// tokenFromRequest takes the token from "Authorization: Bearer" or, for
// browsers, which cannot set headers on a WebSocket, the token query
// parameter.
func tokenFromRequest(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
		return ""
	}
	return r.URL.Query().Get("token")
}

// devTokenTTL is the lifetime of tokens from the development endpoint.
const devTokenTTL = 24 * time.Hour

// HandleDevToken serves POST /v1/dev/token: {"name":"alice"} (and, to
// reconnect as the same player, an optional "playerId" and "pfEntity"; to
// try queues that take them from the token, optional "skill" and "attrs")
// returns {"token":"…","playerId":"…"}. It exists only in development mode;
// anyone who can reach it can be anyone.
func HandleDevToken(a *Authenticator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			writeHTTPError(w, http.StatusMethodNotAllowed, CodeBadRequest, "use POST")
			return
		}
		var req struct {
			Name     string          `json:"name"`
			PlayerID string          `json:"playerId"`
			PfEntity string          `json:"pfEntity"`
			Skill    json.RawMessage `json:"skill"`
			Attrs    json.RawMessage `json:"attrs"`
		}
		// Every field is optional: no body at all is {}.
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
			writeHTTPError(w, http.StatusBadRequest, CodeBadRequest, "body must be JSON like {\"name\":\"alice\"}, or empty")
			return
		}
		if req.Name != "" && strings.TrimSpace(req.Name) == "" {
			writeHTTPError(w, http.StatusBadRequest, CodeBadRequest, "name must not be blank: leave it out for a generated one")
			return
		}
		if req.PlayerID == "" {
			req.PlayerID = uuid.NewString()
		}
		if !domain.ValidPlayerID(req.PlayerID) {
			writeHTTPError(w, http.StatusBadRequest, CodeBadRequest, "playerId must be 1-128 printable characters without spaces or braces")
			return
		}
		if req.Name == "" {
			req.Name = "player-" + req.PlayerID[:min(8, len(req.PlayerID))]
		}
		if utf8.RuneCountInString(req.Name) > 32 {
			writeHTTPError(w, http.StatusBadRequest, CodeBadRequest, "name must be at most 32 characters")
			return
		}
		skill, attrs, err := a.matchClaims(claims{Skill: req.Skill, Attrs: req.Attrs})
		if err != nil {
			writeHTTPError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
			return
		}
		token, err := a.Issue(Identity{PlayerID: req.PlayerID, Name: req.Name, PlayFabEntity: req.PfEntity, Skill: skill, Attrs: attrs}, devTokenTTL)
		if err != nil {
			writeHTTPError(w, http.StatusInternalServerError, CodeInternal, "could not sign token")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"token": token, "playerId": req.PlayerID})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeHTTPError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]*Error{"error": errorf(code, msg)})
}
