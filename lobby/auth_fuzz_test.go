package lobby_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/lobby"
)

// FuzzVerify checks Authenticator.Verify three ways on every input:
//   - token as given: whatever is accepted was signed with the secret
//     (checked here with crypto/hmac, not the JWT library), as HS256;
//   - claims (a JSON payload) signed with the secret: whatever is accepted
//     names a valid player and has not expired;
//   - a token issued for sub and name verifies back to them, and only
//     with the secret that signed it.
//
// A refusal is always ErrBadToken and never repeats the token or secret.
func FuzzVerify(f *testing.F) {
	a := &lobby.Authenticator{Secret: []byte(fuzzSecret)}
	other := &lobby.Authenticator{Secret: []byte("another-secret-another-secret-xx")}
	valid, err := a.Issue(lobby.Identity{PlayerID: "alice", Name: "Alice", PlayFabEntity: "E1"}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	wrong, _ := other.Issue(lobby.Identity{PlayerID: "alice"}, time.Hour)
	exp := time.Now().Add(time.Hour).Unix()
	for _, tc := range []struct{ token, claims string }{
		{valid, `{"sub":"alice","exp":` + itoa(exp) + `}`},
		{wrong, `{"sub":"bob","name":"Bob","pfEntity":"E2","exp":` + itoa(exp) + `}`},
		{signed(`{"alg":"none","typ":"JWT"}`, `{"sub":"alice","exp":9999999999}`, ""), `{"sub":"a b","exp":9999999999}`},
		{signed(`{"alg":"HS384","typ":"JWT"}`, `{"sub":"alice","exp":9999999999}`, fuzzSecret), `{"sub":"{tag}","exp":9999999999}`},
		{signed(`{"alg":"HS256"}`, `{"sub":"alice","exp":1}`, fuzzSecret), `{"sub":"alice"}`},
		{signed(`{"alg":"HS256"}`, `{"sub":"","exp":9999999999}`, fuzzSecret), `{"sub":"alice","exp":1e300}`},
		{strings.TrimSuffix(valid, valid[len(valid)-2:]) + "AA", `{"sub":"alice","exp":"9999999999"}`},
		{valid + "=", `{"sub":["alice"],"exp":9999999999}`},
		{"", `{"sub":"alice","exp":9999999999,"nbf":9999999990}`},
		{"a.b.c", `null`},
		{"not a token", `{"sub":"` + strings.Repeat("x", 129) + `","exp":9999999999}`},
		{"", `{"sub":"alice","exp":9999999999,"skill":1500,"attrs":{"platform":"pc","maps":["dust"],"level":12}}`},
		{"", `{"sub":"alice","exp":9999999999,"skill":"high","attrs":{"platform":null,"x":[1],"y":{"mixed":["a"]}}}`},
	} {
		f.Add(tc.token, tc.claims, "alice", "Alice")
	}
	f.Add("", "", "bob", "")
	f.Add("", "", "a b", "Bob")
	f.Add("", "", "ünïcode", "名前")

	f.Fuzz(func(t *testing.T, token, claims, sub, name string) {
		if id, err := a.Verify(token); err == nil {
			if !signedWithSecret(token) {
				t.Fatalf("accepted a token not signed with the secret as HS256: %q", token)
			}
			checkIdentity(t, id, token)
		} else {
			checkRefusal(t, err, token)
		}

		resigned := signed(`{"alg":"HS256","typ":"JWT"}`, claims, fuzzSecret)
		if id, err := a.Verify(resigned); err == nil {
			checkIdentity(t, id, resigned)
		} else {
			checkRefusal(t, err, resigned)
		}

		if !utf8.ValidString(name) {
			return // JSON cannot carry it: encoding it replaces the bad bytes
		}
		issued, err := a.Issue(lobby.Identity{PlayerID: sub, Name: name}, time.Hour)
		if !domain.ValidPlayerID(sub) {
			if err == nil {
				t.Fatalf("issued a token for the invalid player id %q", sub)
			}
			return
		}
		if err != nil {
			t.Fatalf("issue for %q: %v", sub, err)
		}
		id, err := a.Verify(issued)
		if err != nil {
			t.Fatalf("an issued token for %q did not verify: %v", sub, err)
		}
		if id.PlayerID != sub {
			t.Fatalf("issued for %q, verified as %q", sub, id.PlayerID)
		}
		checkShownName(t, name, sub, id.Name)
		if d := time.Until(id.Expires); d < time.Hour-time.Minute || d > time.Hour+time.Second {
			t.Fatalf("issued for an hour, expires in %v", d)
		}
		if _, err := other.Verify(issued); err == nil {
			t.Fatal("a token was accepted with another secret")
		}
	})
}

const fuzzSecret = "fuzz-secret-fuzz-secret-fuzz-sec"

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// signed builds a JWT from a header and claims, signed with HMAC-SHA256
// under secret ("" leaves the signature empty).
func signed(header, claims, secret string) string {
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	if secret == "" {
		return input + "."
	}
	return input + "." + enc.EncodeToString(hmacSHA256(input))
}

func hmacSHA256(input string) []byte {
	m := hmac.New(sha256.New, []byte(fuzzSecret))
	m.Write([]byte(input))
	return m.Sum(nil)
}

// signedWithSecret reports whether token is header.claims.signature with an
// HS256 header and the HMAC of the secret over its first two parts.
func signedWithSecret(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	sig, err := decodeSegment(parts[2])
	if err != nil || !hmac.Equal(sig, hmacSHA256(parts[0]+"."+parts[1])) {
		return false
	}
	raw, err := decodeSegment(parts[0])
	if err != nil {
		return false
	}
	var header map[string]any // as the JWT library reads it: keys are exact
	return json.Unmarshal(raw, &header) == nil && header["alg"] == "HS256"
}

func decodeSegment(s string) ([]byte, error) {
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.URLEncoding.DecodeString(s)
}

// checkIdentity checks what Verify returned for an accepted token against
// the token's own claims.
func checkIdentity(t *testing.T, id lobby.Identity, token string) {
	t.Helper()
	if !domain.ValidPlayerID(id.PlayerID) {
		t.Fatalf("accepted an invalid player id %q from %q", id.PlayerID, token)
	}
	if id.Name == "" {
		t.Fatalf("accepted %q with an empty name", token)
	}
	if !id.Expires.After(time.Now()) {
		t.Fatalf("accepted %q, which expired at %v", token, id.Expires)
	}
	raw, err := decodeSegment(strings.Split(token, ".")[1])
	if err != nil {
		t.Fatalf("accepted %q, whose claims are not base64url: %v", token, err)
	}
	var claims struct {
		Sub any `json:"sub"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil || claims.Sub != id.PlayerID {
		t.Fatalf("accepted %q as player %q, but its sub is %v (%v)", token, id.PlayerID, claims.Sub, err)
	}
}

func checkRefusal(t *testing.T, err error, token string) {
	t.Helper()
	if !errors.Is(err, lobby.ErrBadToken) {
		t.Fatalf("refusal %v is not ErrBadToken", err)
	}
	msg := err.Error()
	if strings.Contains(msg, fuzzSecret) || (len(token) >= 8 && strings.Contains(msg, token)) {
		t.Fatalf("refusal %q repeats the token or the secret", msg)
	}
}

// checkShownName checks the name Verify gives for a token's name claim
// against docs/protocol.md: a plain name of at most 32 characters comes
// through unchanged; anything else is cleaned to at most 32 printable
// characters with single inner spaces; a name that cleans to nothing is
// the player id.
func checkShownName(t *testing.T, claim, sub, shown string) {
	t.Helper()
	plain := claim != "" && utf8.ValidString(claim) && utf8.RuneCountInString(claim) <= lobby.MaxNameRunes &&
		!strings.HasPrefix(claim, " ") && !strings.HasSuffix(claim, " ") && !strings.Contains(claim, "  ")
	for _, r := range claim {
		plain = plain && (r == ' ' || (unicode.IsGraphic(r) && !unicode.IsSpace(r) && !unicode.Is(unicode.Bidi_Control, r)))
	}
	switch {
	case claim == "" && shown != sub:
		t.Fatalf("no name: shown %q, want the player id %q", shown, sub)
	case plain && shown != claim:
		t.Fatalf("plain name %q shown as %q", claim, shown)
	case shown == sub:
		return // nothing was left of the claim
	}
	if !utf8.ValidString(shown) || utf8.RuneCountInString(shown) > lobby.MaxNameRunes || shown == "" ||
		strings.HasPrefix(shown, " ") || strings.HasSuffix(shown, " ") || strings.Contains(shown, "  ") {
		t.Fatalf("name %q shown as %q: not clean", claim, shown)
	}
	for _, r := range shown {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || (unicode.IsSpace(r) && r != ' ') {
			t.Fatalf("name %q shown as %q: holds %U", claim, shown, r)
		}
	}
}
