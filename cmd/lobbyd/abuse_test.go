package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/lobby/lobbytest"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// handshake dials with header and returns the response's status, error
// body and Retry-After (the client on success).
type handshake struct {
	status     int
	code, msg  string
	retryAfter string
	client     *lobbytest.Client
}

func dial(t *testing.T, url string, header http.Header) handshake {
	t.Helper()
	c, resp, err := lobbytest.Dial(t, url, header)
	require.NotNil(t, resp, "no HTTP response: %v", err)
	h := handshake{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), client: c}
	if err != nil {
		var body struct {
			Error struct{ Code, Message string }
		}
		raw, _ := io.ReadAll(resp.Body)
		json.Unmarshal(raw, &body)
		h.code, h.msg = body.Error.Code, body.Error.Message
	}
	return h
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

// sendRaw writes n copies of frame without waiting for replies.
func sendRaw(c *lobbytest.Client, frame string, n int) {
	for i := 0; i < n; i++ {
		if c.Conn.WriteMessage(websocket.TextMessage, []byte(frame)) != nil {
			return
		}
	}
}

// replyCodes reads frames until the socket closes and counts the replies by
// error code ("ok" for successes).
func replyCodes(c *lobbytest.Client) map[string]int {
	codes := map[string]int{}
	for f := range c.Frames {
		if f.Str("type") != "reply" {
			continue
		}
		if f.OK() {
			codes["ok"]++
		} else {
			codes[f.ErrorCode()]++
		}
	}
	return codes
}

// Invalid frames are charged like valid ones: a flood of garbage gets
// rate_limited, then close 1008, which is logged once and counted.
func TestInvalidFrameFloodCloses1008(t *testing.T) {
	t.Parallel()
	// A refill too slow to matter while the frames are read keeps the
	// counts exact.
	srv, _ := startProtocolServer(t, "-request-rate", "1/h,40")
	token, id := srv.devToken(t, "garbage", "")
	c, _ := srv.connect(t, token)
	sendRaw(c, `not json at all`, 200)
	codes := replyCodes(c)
	assert.Equal(t, websocket.ClosePolicyViolation, c.CloseCode())
	assert.Equal(t, 40, codes["bad_request"], "the burst is spent on bad frames: %v", codes)
	assert.Equal(t, 40, codes["rate_limited"], "then as many are refused before the close: %v", codes)
	assert.EqualValues(t, 1, srv.counter(t, `lobbyd_abuse_disconnects_total{reason="flood"}`))
	storetest.Eventually(t, 5*time.Second, func() bool {
		return strings.Count(srv.stderr.String(), "connection closed for abuse") == 1
	}, "one warning for the close")
	assert.Contains(t, srv.stderr.String(), "player="+id)

	// Reconnecting at once is refused while the penalty lasts.
	h := dial(t, srv.wsURL(), bearer(token))
	assert.Equal(t, http.StatusTooManyRequests, h.status)
	assert.Equal(t, "rate_limited", h.code)
	assert.NotEmpty(t, h.retryAfter)
}

// The request budget is the player's: a reconnect does not refill it.
func TestRequestBudgetSurvivesReconnect(t *testing.T) {
	t.Parallel()
	srv, _ := startProtocolServer(t, "-request-rate", "1/m,5")
	token, _ := srv.devToken(t, "saver", "")
	c, _ := srv.connect(t, token)
	for i := 0; i < 5; i++ {
		require.True(t, c.Request("ping", nil).OK())
	}
	assert.Equal(t, "rate_limited", c.Request("ping", nil).ErrorCode())
	c.Conn.Close()

	again, _ := srv.connect(t, token)
	assert.Equal(t, "rate_limited", again.Request("ping", nil).ErrorCode(), "the new connection resumes the spent budget")
}

// Across nodes: the budget a connection left is resumed by another node
// sharing the Redis.
func TestRequestBudgetFollowsPlayerAcrossNodes(t *testing.T) {
	t.Parallel()
	r := storetest.StartRedis(t)
	env := map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_JWT_SECRET": testJWTSecret, "LOBBYD_REDIS_URL": r.URL,
		"LOBBYD_REQUEST_RATE": "1/m,5", "LOBBYD_CHAT_RATE": "1/m,1"}
	a, b := startServer(t, env), startServer(t, env)
	token, _ := a.devToken(t, "traveller", "")
	c, _ := a.connect(t, token)
	for i := 0; i < 4; i++ {
		require.True(t, c.Request("ping", nil).OK())
	}
	c.Conn.Close()
	storetest.Eventually(t, 10*time.Second, func() bool { return a.metric(t, "lobbyd_connections") == 0 },
		"node a saw the disconnect")

	c, _ = b.connect(t, token)
	assert.True(t, c.Request("ping", nil).OK(), "one request was left")
	assert.Equal(t, "rate_limited", c.Request("ping", nil).ErrorCode(), "node b resumed the budget node a left")
}

func TestChatAndQueueJoinBudgetsSurviveReconnect(t *testing.T) {
	t.Parallel()
	srv, _ := startProtocolServer(t, "-chat-rate", "1/m,1", "-queue-join-rate", "2/m")
	token, _ := srv.devToken(t, "chatty", "")
	c, _ := srv.connect(t, token)
	require.True(t, c.Request("queue.join", map[string]any{"queue": "default"}).OK())
	require.True(t, c.Request("queue.leave", nil).OK())
	require.True(t, c.Request("lobby.create", map[string]any{"queue": "default"}).OK())
	require.True(t, c.Request("lobby.chat", map[string]any{"text": "hi"}).OK())
	require.True(t, c.Request("lobby.leave", nil).OK())
	c.Conn.Close()

	c, _ = srv.connect(t, token)
	require.True(t, c.Request("lobby.create", map[string]any{"queue": "default"}).OK())
	assert.Equal(t, "rate_limited", c.Request("lobby.chat", map[string]any{"text": "again"}).ErrorCode())
	require.True(t, c.Request("lobby.leave", nil).OK())
	require.True(t, c.Request("queue.join", map[string]any{"queue": "default"}).OK(), "the second join of the minute")
	require.True(t, c.Request("queue.leave", nil).OK())
	assert.Equal(t, "rate_limited", c.Request("queue.join", map[string]any{"queue": "default"}).ErrorCode(), "the third")
}

func TestHandshakeLimits(t *testing.T) {
	t.Parallel()
	t.Run("per player", func(t *testing.T) {
		srv, _ := startProtocolServer(t, "-handshake-rate", "3/m")
		token, _ := srv.devToken(t, "hopper", "")
		for i := 0; i < 3; i++ {
			c, _ := srv.connect(t, token)
			c.Conn.Close()
		}
		h := dial(t, srv.wsURL(), bearer(token))
		assert.Equal(t, http.StatusTooManyRequests, h.status)
		assert.Equal(t, "rate_limited", h.code)
		assert.NotEmpty(t, h.retryAfter)
		other, _ := srv.devToken(t, "other", "")
		srv.connect(t, other) // another player is not affected
	})
	t.Run("per address", func(t *testing.T) {
		srv, _ := startProtocolServer(t, "-addr-handshake-rate", "2/m")
		for i := 0; i < 2; i++ {
			token, _ := srv.devToken(t, "neighbour", "")
			srv.connect(t, token)
		}
		token, _ := srv.devToken(t, "neighbour", "")
		h := dial(t, srv.wsURL(), bearer(token))
		assert.Equal(t, http.StatusTooManyRequests, h.status)
		assert.Contains(t, h.msg, "address")
	})
	t.Run("connections per address", func(t *testing.T) {
		srv, _ := startProtocolServer(t, "-max-conns-per-addr", "2")
		var first *lobbytest.Client
		for i := 0; i < 2; i++ {
			token, _ := srv.devToken(t, "holder", "")
			first, _ = srv.connect(t, token)
		}
		token, _ := srv.devToken(t, "holder", "")
		assert.Equal(t, http.StatusTooManyRequests, dial(t, srv.wsURL(), bearer(token)).status)
		first.Conn.Close()
		storetest.Eventually(t, 10*time.Second, func() bool {
			return dial(t, srv.wsURL(), bearer(token)).status == http.StatusSwitchingProtocols
		}, "a slot is free again once a socket closed")
	})
	t.Run("connections per node", func(t *testing.T) {
		srv, _ := startProtocolServer(t, "-max-conns", "1")
		token, _ := srv.devToken(t, "first", "")
		srv.connect(t, token)
		token, _ = srv.devToken(t, "second", "")
		h := dial(t, srv.wsURL(), bearer(token))
		assert.Equal(t, http.StatusServiceUnavailable, h.status)
		assert.Equal(t, "unavailable", h.code)
	})
}

// Behind a proxy the client's address comes from the configured header,
// and only from the trusted proxies.
func TestClientAddressFromTrustedHeader(t *testing.T) {
	t.Parallel()
	withXFF := func(token, addr string) http.Header {
		h := bearer(token)
		h.Set("X-Forwarded-For", "203.0.113.7, "+addr)
		return h
	}
	t.Run("trusted", func(t *testing.T) {
		srv, _ := startProtocolServer(t, "-client-ip-header", "X-Forwarded-For", "-trusted-proxies", "127.0.0.1/32", "-max-conns-per-addr", "1")
		a, _ := srv.devToken(t, "a", "")
		b, _ := srv.devToken(t, "b", "")
		c, _ := srv.devToken(t, "c", "")
		assert.Equal(t, http.StatusSwitchingProtocols, dial(t, srv.wsURL(), withXFF(a, "198.51.100.1")).status)
		assert.Equal(t, http.StatusSwitchingProtocols, dial(t, srv.wsURL(), withXFF(b, "198.51.100.2")).status, "another client address")
		assert.Equal(t, http.StatusTooManyRequests, dial(t, srv.wsURL(), withXFF(c, "198.51.100.1")).status, "the same client address")
	})
	t.Run("untrusted peer", func(t *testing.T) {
		srv, _ := startProtocolServer(t, "-client-ip-header", "X-Forwarded-For", "-trusted-proxies", "10.0.0.0/8", "-max-conns-per-addr", "1")
		a, _ := srv.devToken(t, "a", "")
		b, _ := srv.devToken(t, "b", "")
		assert.Equal(t, http.StatusSwitchingProtocols, dial(t, srv.wsURL(), withXFF(a, "198.51.100.1")).status)
		assert.Equal(t, http.StatusTooManyRequests, dial(t, srv.wsURL(), withXFF(b, "198.51.100.2")).status,
			"a peer that is not a trusted proxy cannot choose its address")
	})
}

func TestInvalidUTF8Closes1007(t *testing.T) {
	t.Parallel()
	srv, _ := startProtocolServer(t)
	token, id := srv.devToken(t, "mojibake", "")
	c, _ := srv.connect(t, token)
	require.NoError(t, c.Conn.WriteMessage(websocket.TextMessage, []byte("{\"type\":\"ping\",\"id\":\"\xff\xfe\"}")))
	assert.Equal(t, websocket.CloseInvalidFramePayloadData, c.CloseCode())
	assert.EqualValues(t, 1, srv.counter(t, `lobbyd_abuse_disconnects_total{reason="invalid_utf8"}`))
	storetest.Eventually(t, 5*time.Second, func() bool {
		return strings.Count(srv.stderr.String(), "connection closed for abuse") == 1
	}, "one warning for the close")
	assert.Regexp(t, `level=WARN msg="connection closed for abuse" .*player=`+regexp.QuoteMeta(id)+` .*reason=invalid_utf8`, srv.stderr.String())
}

// A client's ping control frames are charged like requests: a ping flood
// is closed with 1008 as a flood of frames is.
func TestPingFloodCloses1008(t *testing.T) {
	t.Parallel()
	// A refill too slow to matter while the pings are read: 40 answered,
	// 40 refused, then the close.
	srv, _ := startProtocolServer(t, "-request-rate", "1/h,40")
	token, id := srv.devToken(t, "pinger", "")
	c, _ := srv.connect(t, token)
	for i := 0; i < 200; i++ {
		if c.Conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second)) != nil {
			break // the server closed the socket
		}
	}
	assert.Equal(t, websocket.ClosePolicyViolation, c.CloseCode())
	assert.EqualValues(t, 1, srv.counter(t, `lobbyd_abuse_disconnects_total{reason="flood"}`))
	assert.Regexp(t, `msg="connection closed for abuse" .*player=`+regexp.QuoteMeta(id)+` .*reason=flood`, srv.stderr.String())
}

// A client address header believed from every peer is a misconfiguration
// unless only the proxy can reach lobbyd: the node says so at start-up.
func TestClientIPHeaderWithoutTrustedProxiesWarns(t *testing.T) {
	t.Parallel()
	const warning = "LOBBYD_CLIENT_IP_HEADER is set but LOBBYD_TRUSTED_PROXIES is not"
	srv, _ := startProtocolServer(t, "-client-ip-header", "X-Forwarded-For")
	assert.Regexp(t, `level=WARN msg="`+warning+`.*header=X-Forwarded-For`, srv.stderr.String())
	trusted, _ := startProtocolServer(t, "-client-ip-header", "X-Forwarded-For", "-trusted-proxies", "10.0.0.0/8")
	assert.NotContains(t, trusted.stderr.String(), warning, "no warning once the proxies are named")
}

func TestAbuseClosesAreCountedByReason(t *testing.T) {
	t.Parallel()
	srv, _ := startProtocolServer(t)
	token, _ := srv.devToken(t, "big", "")
	c, _ := srv.connect(t, token)
	require.NoError(t, c.Conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","pad":"`+strings.Repeat("x", 5000)+`"}`)))
	assert.Equal(t, websocket.CloseMessageTooBig, c.CloseCode())
	token, _ = srv.devToken(t, "bin", "")
	c, _ = srv.connect(t, token)
	require.NoError(t, c.Conn.WriteMessage(websocket.BinaryMessage, []byte{1}))
	assert.Equal(t, websocket.CloseUnsupportedData, c.CloseCode())
	// gorilla sends the 1009 close itself, before lobbyd's read loop sees
	// the error and counts it: the counter follows the close, not before.
	storetest.Eventually(t, 5*time.Second, func() bool {
		return srv.counter(t, `lobbyd_abuse_disconnects_total{reason="frame_too_large"}`) == 1
	}, "the oversized frame's close is counted")
	assert.EqualValues(t, 1, srv.counter(t, `lobbyd_abuse_disconnects_total{reason="binary_frame"}`))
	storetest.Eventually(t, 5*time.Second, func() bool {
		return strings.Count(srv.stderr.String(), "connection closed for abuse") == 2
	}, "one warning per close")
}

func TestSkillBounds(t *testing.T) {
	t.Parallel()
	srv, _ := startProtocolServer(t)
	token, _ := srv.devToken(t, "huge", "")
	c, _ := srv.connect(t, token)
	for _, skill := range []float64{1.79e308, -1.79e308, 1000000.5} {
		r := c.Request("queue.join", map[string]any{"queue": "default", "skill": skill})
		assert.Equal(t, "bad_request", r.ErrorCode(), "skill %g", skill)
	}
	assert.Equal(t, "bad_request", c.Request("lobby.create", map[string]any{"queue": "default", "skill": 1e300}).ErrorCode())
	require.True(t, c.Request("lobby.create", map[string]any{"queue": "default", "skill": -1e6}).OK(), "the bound itself is allowed")
	assert.Equal(t, "bad_request", c.Request("lobby.ready", map[string]any{"ready": true, "skill": 2e6}).ErrorCode())
}

func TestSkillRangeIsConfigurable(t *testing.T) {
	t.Parallel()
	srv, _ := startProtocolServer(t, "-skill-min", "0", "-skill-max", "5000")
	token, _ := srv.devToken(t, "elo", "")
	c, _ := srv.connect(t, token)
	assert.Equal(t, "bad_request", c.Request("queue.join", map[string]any{"queue": "default", "skill": -1}).ErrorCode())
	assert.True(t, c.Request("queue.join", map[string]any{"queue": "default", "skill": 5000}).OK())
}

// sign makes an HS256 token with arbitrary claims.
func sign(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testJWTSecret))
	require.NoError(t, err)
	return s
}

func TestTokenClaims(t *testing.T) {
	t.Parallel()
	srv, _ := startProtocolServer(t, "-max-token-lifetime", "1h")
	now := time.Now()

	t.Run("name is cleaned and cut", func(t *testing.T) {
		name := "\u202eevil\x07\n  " + strings.Repeat("n", 100000)
		c, _ := srv.connect(t, sign(t, jwt.MapClaims{"sub": "named", "name": name, "exp": now.Add(time.Minute).Unix()}))
		l := c.Request("lobby.create", map[string]any{"queue": "default"}).Obj("data").Obj("lobby")
		members := l["members"].([]any)
		got := members[0].(map[string]any)["name"].(string)
		assert.Equal(t, "evil "+strings.Repeat("n", 27), got)
	})
	t.Run("nbf in the future", func(t *testing.T) {
		h := dial(t, srv.wsURL(), bearer(sign(t, jwt.MapClaims{"sub": "early", "nbf": now.Add(time.Hour).Unix(), "exp": now.Add(2 * time.Hour).Unix()})))
		assert.Equal(t, http.StatusUnauthorized, h.status)
		assert.Contains(t, h.msg, "not yet valid")
	})
	t.Run("lifetime too long", func(t *testing.T) {
		h := dial(t, srv.wsURL(), bearer(sign(t, jwt.MapClaims{"sub": "forever", "iat": now.Unix(), "exp": now.Add(2 * time.Hour).Unix()})))
		assert.Equal(t, http.StatusUnauthorized, h.status)
		assert.Contains(t, h.msg, "longer than")
		h = dial(t, srv.wsURL(), bearer(sign(t, jwt.MapClaims{"sub": "forever", "exp": now.Add(2 * time.Hour).Unix()})))
		assert.Equal(t, http.StatusUnauthorized, h.status, "without iat the lifetime counts from now")
		h = dial(t, srv.wsURL(), bearer(sign(t, jwt.MapClaims{"sub": "brief", "iat": now.Unix(), "exp": now.Add(50 * time.Minute).Unix()})))
		assert.Equal(t, http.StatusSwitchingProtocols, h.status)
	})
}

func TestOriginAgainstPublicURL(t *testing.T) {
	t.Parallel()
	srv, auth := startProtocolServer(t, "-public-url", "https://play.example")
	for _, tc := range []struct {
		origin string
		status int
	}{
		{"https://play.example", http.StatusSwitchingProtocols},
		{"http://play.example", http.StatusForbidden},       // the scheme counts
		{"https://evil.example", http.StatusForbidden},      // another host
		{srv.URL, http.StatusForbidden},                     // the Host header is no longer trusted
		{"https://play.example:8443", http.StatusForbidden}, // nor another port
	} {
		token, _ := srv.devToken(t, "browser", "")
		h := bearer(token)
		h.Set("Origin", tc.origin)
		assert.Equal(t, tc.status, dial(t, srv.wsURL(), h).status, "origin %s", tc.origin)
	}
	_ = auth
}

func TestConsoleCannotBeFramed(t *testing.T) {
	t.Parallel()
	srv, _ := startProtocolServer(t)
	resp, err := http.Get(srv.URL + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
}

// GET /v1/queues needs no token: a flood of it is served from a copy, not
// from Redis.
func TestQueuesRouteFloodDoesNotReachRedis(t *testing.T) {
	t.Parallel()
	r := storetest.StartRedis(t)
	srv := startServer(t, map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_REDIS_URL": r.URL})
	opts, err := redis.ParseURL(r.URL)
	require.NoError(t, err)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	zcards := func() int {
		stats, err := rdb.Info(context.Background(), "commandstats").Result()
		require.NoError(t, err)
		for _, line := range strings.Split(stats, "\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_zcard:calls="); ok {
				n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
				return n
			}
		}
		return 0
	}
	before := zcards()
	start := time.Now()
	const requests = 300
	for i := 0; i < requests; i++ {
		resp, err := http.Get(srv.URL + "/v1/queues")
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	// At most one refresh a second (plus the matchmaker's own reads, which
	// use no ZCARD).
	most := int(time.Since(start)/time.Second) + 2
	assert.LessOrEqual(t, zcards()-before, most, "%d requests", requests)
}
