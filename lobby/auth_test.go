package lobby_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/lobby"
)

// The claims skill and attrs are read into the identity; a claim of the
// wrong shape refuses the token, naming the claim and never its value.
func TestTokenMatchClaims(t *testing.T) {
	a := &lobby.Authenticator{Secret: []byte(fuzzSecret)}
	exp := itoa(time.Now().Add(time.Hour).Unix())
	token := func(extra string) string {
		return signed(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"alice","exp":`+exp+extra+`}`, fuzzSecret)
	}

	id, err := a.Verify(token(`,"skill":1500.5,"attrs":{"platform":"pc","maps":["dust","harbor"],"level":12}`))
	require.NoError(t, err)
	require.NotNil(t, id.Skill)
	assert.Equal(t, 1500.5, *id.Skill)
	assert.Equal(t, map[string]domain.AttrValue{
		"platform": {Type: domain.AttrString, Str: "pc"},
		"maps":     {Type: domain.AttrStrings, Strs: []string{"dust", "harbor"}},
		"level":    {Type: domain.AttrNumber, Num: 12},
	}, id.Attrs)

	id, err = a.Verify(token(``))
	require.NoError(t, err)
	assert.Nil(t, id.Skill, "no claim, no skill")
	assert.Nil(t, id.Attrs)

	for _, tc := range []struct{ claims, want string }{
		{`,"skill":"high"`, "skill must be a number"},
		{`,"skill":[1]`, "skill must be a number"},
		{`,"attrs":[1]`, "attrs must be an object"},
		{`,"attrs":{"platform":true}`, "attrs must be an object"},
		{`,"attrs":{"platform":{"mixed":["pc","xbox"]}}`, "attrs.platform must be"},
		{`,"attrs":{"platform":"` + strings.Repeat("x", 65) + `"}`, "attrs.platform must be valid UTF-8 of at most 64 bytes"},
		{`,"attrs":{"bad name":"x"}`, "attrs: names must be"},
		{`,"attrs":{"maps":[` + strings.Repeat(`"m",`, 32) + `"m"]}`, "attrs.maps may hold at most 32 values"},
	} {
		_, err := a.Verify(token(tc.claims))
		require.ErrorIs(t, err, lobby.ErrBadToken, tc.claims)
		assert.Contains(t, err.Error(), tc.want, tc.claims)
		assert.NotContains(t, err.Error(), "high", "the value is not echoed")
	}

	skill := 1200.0
	issued, err := a.Issue(lobby.Identity{PlayerID: "bob", Skill: &skill,
		Attrs: map[string]domain.AttrValue{"platform": {Type: domain.AttrString, Str: "xbox"}}}, time.Hour)
	require.NoError(t, err)
	id, err = a.Verify(issued)
	require.NoError(t, err)
	require.NotNil(t, id.Skill)
	assert.Equal(t, 1200.0, *id.Skill, "what Issue signs, Verify reads")
	assert.Equal(t, "xbox", id.Attrs["platform"].Str)
}

// The development endpoint signs the claims it is given, and refuses a
// claim of the wrong shape naming it.
func TestDevTokenMatchClaims(t *testing.T) {
	a := &lobby.Authenticator{Secret: []byte(fuzzSecret)}
	h := lobby.HandleDevToken(a)
	post := func(body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/dev/token", strings.NewReader(body)))
		return w
	}
	w := post(`{"name":"ann","skill":"high"}`)
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.Contains(t, w.Body.String(), `"message":"skill must be a number"`)

	w = post(`{"name":"ann","skill":1700,"attrs":{"platform":"pc"}}`)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var out struct{ Token string }
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out))
	id, err := a.Verify(out.Token)
	require.NoError(t, err)
	require.NotNil(t, id.Skill)
	assert.Equal(t, 1700.0, *id.Skill)
	assert.Equal(t, "pc", id.Attrs["platform"].Str)
}

// Every field of the dev token request is optional, so no body at all is
// fine; a name of blanks is refused rather than shown as nothing.
func TestDevTokenBodyAndBlankName(t *testing.T) {
	a := &lobby.Authenticator{Secret: []byte(fuzzSecret)}
	h := lobby.HandleDevToken(a)
	post := func(body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/dev/token", strings.NewReader(body)))
		return w
	}
	w := post("")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var out struct{ Token, PlayerID string }
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out))
	id, err := a.Verify(out.Token)
	require.NoError(t, err)
	assert.Equal(t, out.PlayerID, id.PlayerID)
	assert.Equal(t, "player-"+out.PlayerID[:8], id.Name, "a generated name")

	for _, blank := range []string{" ", "   ", "\t", "\u3000"} {
		body, _ := json.Marshal(map[string]string{"name": blank})
		w = post(string(body))
		assert.Equal(t, http.StatusBadRequest, w.Code, "%q", blank)
		assert.Contains(t, w.Body.String(), "blank")
	}
	assert.Equal(t, http.StatusBadRequest, post(`{"name":`).Code, "malformed JSON is still refused")
}
