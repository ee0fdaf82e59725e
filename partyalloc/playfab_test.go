package partyalloc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/testutil"
	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
)

const pfTestSecret = "pf-secret-DO-NOT-LOG-7f3a"

// pfHarness is a PlayFabClient wired to an in-process fake PlayFab, with
// its sleeps and logs recorded.
type pfHarness struct {
	fake     *fakeplayfab.Server
	srv      *httptest.Server
	client   *PlayFabClient
	sleeps   *pfSleeps
	logs     *testutil.SyncBuffer
	observer *pfObserver
}

// newPFHarness starts a fake configured by cfg, its handler wrapped by wrap
// when not nil, and a client for it that retries without waiting.
func newPFHarness(t *testing.T, cfg fakeplayfab.Config, wrap func(http.Handler) http.Handler) *pfHarness {
	t.Helper()
	if cfg.SecretKey == "" {
		cfg.SecretKey = pfTestSecret
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	fake := fakeplayfab.New(cfg)
	var h http.Handler = fake
	if wrap != nil {
		h = wrap(fake)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	logs := &testutil.SyncBuffer{}
	sleeps := &pfSleeps{}
	observer := &pfObserver{retries: map[string]int{}}
	client := &PlayFabClient{
		BaseURL:    srv.URL,
		TitleID:    "FAKE",
		SecretKey:  pfTestSecret,
		HTTPClient: srv.Client(),
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RetryBase:  time.Millisecond,
		RetryMax:   10 * time.Millisecond,
		Observer:   observer,
		sleep:      sleeps.sleep,
	}
	return &pfHarness{fake: fake, srv: srv, client: client, sleeps: sleeps, logs: logs, observer: observer}
}

// pfSleeps records the client's waits instead of waiting.
type pfSleeps struct {
	mu      sync.Mutex
	waits   []time.Duration
	onSleep func(n int) // called with the number of waits so far
}

func (s *pfSleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	n, onSleep := len(s.waits), s.onSleep
	s.mu.Unlock()
	if onSleep != nil {
		onSleep(n)
	}
	return ctx.Err()
}

func (s *pfSleeps) recorded() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// pfObserver records what the client reports.
type pfObserver struct {
	mu      sync.Mutex
	calls   []string // "api outcome"
	retries map[string]int
}

func (o *pfObserver) PlayFabCall(api, outcome string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, api+" "+outcome)
}

func (o *pfObserver) PlayFabRetry(api string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.retries[api]++
}

func (o *pfObserver) snapshot() ([]string, map[string]int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	retries := make(map[string]int, len(o.retries))
	for k, v := range o.retries {
		retries[k] = v
	}
	return append([]string(nil), o.calls...), retries
}

// pfClock is a clock tests move by hand.
type pfClock struct {
	mu  sync.Mutex
	now time.Time
}

func newPFClock() *pfClock {
	return &pfClock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *pfClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *pfClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// pfRequest is a valid request for party partyID.
func pfRequest(partyID string) PartyRequest {
	return PartyRequest{
		PartyID: partyID,
		NetworkConfiguration: NetworkConfiguration{
			MaxUsers:              4,
			MaxDevices:            4,
			MaxUsersPerDevice:     1,
			MaxDevicesPerUser:     1,
			MaxEndpointsPerDevice: 1,
			PartyInvitationConfiguration: &PartyInvitationConfiguration{
				Revocability: "Anyone",
				EntityKeys: []EntityKey{
					{ID: "A1", Type: "title_player_account"},
					{ID: "B2", Type: "title_player_account"},
				},
			},
		},
		PreferredRegions: []string{"EastUs", "WestUs"},
	}
}

// pfOnPath wraps a handler so that requests to path go to intercept, which
// gets the call's number on that path (from 1) and returns whether it
// answered; otherwise the request reaches the fake.
func pfOnPath(path string, intercept func(n int, w http.ResponseWriter, r *http.Request) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		var calls atomic.Int64
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == path && intercept(int(calls.Add(1)), w, r) {
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// pfReply writes a canned reply.
func pfReply(status int, header map[string]string, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// pfDrop closes the connection without a reply.
func pfDrop(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

func TestRequestPartyHappyPath(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]http.Header{}
	record := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[r.URL.Path] = r.Header.Clone()
			mu.Unlock()
			next.ServeHTTP(w, r)
		})
	}
	h := newPFHarness(t, fakeplayfab.Config{}, record)
	partyID := uuid.NewString()

	party, err := h.client.RequestParty(context.Background(), pfRequest(partyID))
	require.NoError(t, err)

	assert.Equal(t, partyID, party.PartyID)
	_, err = uuid.Parse(party.InvitationID)
	assert.NoError(t, err)
	info, err := fakeplayfab.DecodeDescriptor(party.SerializedNetworkDescriptor)
	require.NoError(t, err)
	assert.Equal(t, partyID, info.PartyID)
	assert.Equal(t, "EastUs", info.Region, "the first preferred region")

	stats := h.fake.Stats()
	assert.Equal(t, 1, stats.GetEntityToken)
	assert.Equal(t, 1, stats.RequestPartyService)
	assert.Equal(t, map[string]int{partyID: 1}, stats.Successes)

	mu.Lock()
	defer mu.Unlock()
	tokenReq, partyReq := seen["/Authentication/GetEntityToken"], seen["/Party/RequestPartyService"]
	assert.Equal(t, pfTestSecret, tokenReq.Get("X-SecretKey"))
	assert.Empty(t, tokenReq.Get("X-EntityToken"))
	assert.Empty(t, partyReq.Get("X-SecretKey"), "the secret key goes to GetEntityToken only")
	assert.NotEmpty(t, partyReq.Get("X-EntityToken"))
	assert.Equal(t, "application/json", partyReq.Get("Content-Type"))

	calls, retries := h.observer.snapshot()
	assert.Equal(t, []string{"GetEntityToken ok", "RequestPartyService ok"}, calls)
	assert.Empty(t, retries)
}

func TestRequestPartyCachesToken(t *testing.T) {
	h := newPFHarness(t, fakeplayfab.Config{}, nil)
	for range 10 {
		_, err := h.client.RequestParty(context.Background(), pfRequest(uuid.NewString()))
		require.NoError(t, err)
	}
	stats := h.fake.Stats()
	assert.Equal(t, 1, stats.GetEntityToken)
	assert.Equal(t, 10, stats.RequestPartyService)
}

func TestRequestPartyConcurrentColdCacheFetchesOneToken(t *testing.T) {
	// The token fetch is held until every caller has started, so that
	// they all find it in flight rather than finished.
	arrived := make(chan struct{}, 50)
	release := make(chan struct{})
	hold := pfOnPath("/Authentication/GetEntityToken", func(n int, w http.ResponseWriter, r *http.Request) bool {
		arrived <- struct{}{}
		<-release
		return false
	})
	h := newPFHarness(t, fakeplayfab.Config{}, hold)

	const callers = 50
	var started, done sync.WaitGroup
	started.Add(callers)
	errs := make([]error, callers)
	for i := range callers {
		done.Go(func() {
			started.Done()
			_, errs[i] = h.client.RequestParty(context.Background(), pfRequest(uuid.NewString()))
		})
	}
	started.Wait()
	<-arrived
	close(release)
	done.Wait()

	for _, err := range errs {
		require.NoError(t, err)
	}
	stats := h.fake.Stats()
	assert.Equal(t, 1, stats.GetEntityToken)
	assert.Equal(t, callers, stats.RequestPartyService)
}

func TestRequestPartyRefreshesTokenBeforeExpiry(t *testing.T) {
	tests := []struct {
		name          string
		lifetime      time.Duration
		refreshBefore time.Duration
		stillCached   time.Duration // time after the first fetch at which the token is reused
		refreshed     time.Duration // time after the first fetch at which it is replaced
	}{
		{"default one hour before", 24 * time.Hour, 0, 22*time.Hour + 59*time.Minute, 23*time.Hour + time.Second},
		{"configured", 24 * time.Hour, 10 * time.Minute, 23*time.Hour + 49*time.Minute, 23*time.Hour + 50*time.Minute},
		{"short-lived token at four fifths of its life", time.Hour, 0, 47 * time.Minute, 48 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newPFClock()
			h := newPFHarness(t, fakeplayfab.Config{TokenLifetime: tt.lifetime, Now: clock.Now}, nil)
			h.client.now = clock.Now
			h.client.TokenRefreshBefore = tt.refreshBefore
			request := func() {
				t.Helper()
				_, err := h.client.RequestParty(context.Background(), pfRequest(uuid.NewString()))
				require.NoError(t, err)
			}

			request()
			clock.Advance(tt.stillCached)
			request()
			assert.Equal(t, 1, h.fake.Stats().GetEntityToken, "token reused")

			clock.Advance(tt.refreshed - tt.stillCached)
			request()
			assert.Equal(t, 2, h.fake.Stats().GetEntityToken, "token replaced")
			request()
			assert.Equal(t, 2, h.fake.Stats().GetEntityToken, "new token reused")
		})
	}
}

func TestRequestPartyKeepsTokenWhileRefreshFails(t *testing.T) {
	clock := newPFClock()
	var failTokens atomic.Bool
	unavailable := pfReply(http.StatusServiceUnavailable, nil,
		`{"code":503,"status":"ServiceUnavailable","error":"ServiceUnavailable","errorCode":1123,"errorMessage":"down"}`)
	h := newPFHarness(t, fakeplayfab.Config{Now: clock.Now}, pfOnPath("/Authentication/GetEntityToken",
		func(n int, w http.ResponseWriter, r *http.Request) bool {
			if failTokens.Load() {
				unavailable(w)
				return true
			}
			return false
		}))
	h.client.now = clock.Now

	_, err := h.client.RequestParty(context.Background(), pfRequest(uuid.NewString()))
	require.NoError(t, err)
	clock.Advance(23*time.Hour + 30*time.Minute) // due for refresh, not expired
	failTokens.Store(true)

	_, err = h.client.RequestParty(context.Background(), pfRequest(uuid.NewString()))
	require.NoError(t, err, "the still-valid token is used while GetEntityToken fails")
	assert.Empty(t, h.sleeps.recorded())
	assert.Contains(t, h.logs.String(), "using the current entity token")
}

func TestRequestPartyRefreshesExpiredTokenOnce(t *testing.T) {
	fakeClock := newPFClock()
	h := newPFHarness(t, fakeplayfab.Config{Now: fakeClock.Now}, nil)
	h.client.now = newPFClock().Now

	_, err := h.client.RequestParty(context.Background(), pfRequest(uuid.NewString()))
	require.NoError(t, err)
	// Only PlayFab's clock moves: the client believes its token is fresh.
	fakeClock.Advance(25 * time.Hour)

	_, err = h.client.RequestParty(context.Background(), pfRequest(uuid.NewString()))
	require.NoError(t, err)
	stats := h.fake.Stats()
	assert.Equal(t, 2, stats.GetEntityToken)
	assert.Equal(t, 3, stats.RequestPartyService, "one refused with EntityTokenExpired, then repeated")
	assert.Empty(t, h.sleeps.recorded(), "a token refresh needs no backoff")
	_, retries := h.observer.snapshot()
	assert.Equal(t, map[string]int{APIRequestPartyService: 1}, retries)
}

func TestRequestPartyTokenRejectedTwice(t *testing.T) {
	invalid := pfReply(http.StatusUnauthorized, nil,
		`{"code":401,"status":"Unauthorized","error":"EntityTokenInvalid","errorCode":1335,"errorMessage":"bad token"}`)
	var partyCalls atomic.Int64
	h := newPFHarness(t, fakeplayfab.Config{}, pfOnPath("/Party/RequestPartyService",
		func(n int, w http.ResponseWriter, r *http.Request) bool {
			partyCalls.Add(1)
			invalid(w)
			return true
		}))

	_, err := h.client.RequestParty(context.Background(), pfRequest(uuid.NewString()))
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "EntityTokenInvalid", apiErr.Name)
	assert.False(t, IsRetryable(err))
	assert.Equal(t, int64(2), partyCalls.Load(), "refreshed and repeated once, not more")
	assert.Equal(t, 2, h.fake.Stats().GetEntityToken)
}

func TestRequestPartyRetriesTransientFailures(t *testing.T) {
	tests := []struct {
		name     string
		failures int
		reply    func(w http.ResponseWriter)
		minWait  time.Duration // every recorded wait is at least this
	}{
		{
			name:     "503 ServiceUnavailable",
			failures: 2,
			reply: pfReply(503, nil, `{"code":503,"status":"ServiceUnavailable","error":"ServiceUnavailable",`+
				`"errorCode":1123,"errorMessage":"The service is temporarily unavailable"}`),
		},
		{
			name:     "500 InternalServerError",
			failures: 1,
			reply: pfReply(500, nil, `{"code":500,"status":"InternalServerError","error":"InternalServerError",`+
				`"errorCode":1110,"errorMessage":"oops"}`),
		},
		{
			name:     "429 with retryAfterSeconds",
			failures: 2,
			reply: pfReply(429, map[string]string{"Retry-After": "1"}, `{"code":429,"status":"TooManyRequests",`+
				`"error":"APIClientRequestRateLimitExceeded","errorCode":1199,"errorMessage":"slow down","retryAfterSeconds":0.25}`),
			minWait: 250 * time.Millisecond,
		},
		{
			name:     "429 with Retry-After header only",
			failures: 1,
			reply: pfReply(429, map[string]string{"Retry-After": "2"}, `{"code":429,"status":"TooManyRequests",`+
				`"error":"PartyTooManyRequests","errorCode":1441,"errorMessage":"slow down"}`),
			minWait: 2 * time.Second,
		},
		{
			name:     "retryable name on a 4xx status",
			failures: 1,
			reply: pfReply(400, nil, `{"code":400,"status":"BadRequest","error":"PartyRequestsThrottledFromRateLimiter",`+
				`"errorCode":1504,"errorMessage":"throttled","retryAfterSeconds":3}`),
			minWait: 3 * time.Second,
		},
		{
			name:     "502 from a proxy, not JSON",
			failures: 1,
			reply:    pfReply(502, map[string]string{"Content-Type": "text/html"}, "<html><body>Bad Gateway</body></html>"),
		},
		{
			name:     "connection dropped",
			failures: 2,
			reply:    pfDrop,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var partyCalls atomic.Int64
			h := newPFHarness(t, fakeplayfab.Config{}, pfOnPath("/Party/RequestPartyService",
				func(n int, w http.ResponseWriter, r *http.Request) bool {
					partyCalls.Add(1)
					if n <= tt.failures {
						tt.reply(w)
						return true
					}
					return false
				}))
			partyID := uuid.NewString()

			party, err := h.client.RequestParty(context.Background(), pfRequest(partyID))
			require.NoError(t, err)
			assert.Equal(t, partyID, party.PartyID)
			assert.Equal(t, int64(tt.failures+1), partyCalls.Load())

			waits := h.sleeps.recorded()
			require.Len(t, waits, tt.failures)
			for _, d := range waits {
				assert.GreaterOrEqual(t, d, max(tt.minWait, h.client.RetryBase))
			}
			_, retries := h.observer.snapshot()
			assert.Equal(t, tt.failures, retries[APIRequestPartyService])
			assert.Contains(t, h.logs.String(), "playfab call failed, retrying")
		})
	}
}

func TestRequestPartyHonoursFakeThrottle(t *testing.T) {
	h := newPFHarness(t, fakeplayfab.Config{Faults: fakeplayfab.Faults{ThrottleRate: 1, RetryAfter: 50 * time.Millisecond}}, nil)
	h.sleeps.onSleep = func(int) { h.fake.SetFaults(fakeplayfab.Faults{}) }
	partyID := uuid.NewString()

	_, err := h.client.RequestParty(context.Background(), pfRequest(partyID))
	require.NoError(t, err)
	waits := h.sleeps.recorded()
	require.Len(t, waits, 1)
	assert.GreaterOrEqual(t, waits[0], 50*time.Millisecond)
	stats := h.fake.Stats()
	assert.Equal(t, 1, stats.Throttled)
	assert.Equal(t, 2, stats.Parties[partyID])
	assert.Equal(t, 1, stats.Successes[partyID])
}

func TestRequestPartyRetriesGetEntityToken(t *testing.T) {
	h := newPFHarness(t, fakeplayfab.Config{}, pfOnPath("/Authentication/GetEntityToken",
		func(n int, w http.ResponseWriter, r *http.Request) bool {
			if n == 1 {
				pfDrop(w)
				return true
			}
			return false
		}))
	_, err := h.client.RequestParty(context.Background(), pfRequest(uuid.NewString()))
	require.NoError(t, err)
	assert.Len(t, h.sleeps.recorded(), 1)
	calls, retries := h.observer.snapshot()
	assert.Equal(t, []string{"GetEntityToken network", "GetEntityToken ok", "RequestPartyService ok"}, calls)
	assert.Equal(t, map[string]int{APIGetEntityToken: 1}, retries)
}

func TestRequestPartyDoesNotRetryInvalidParams(t *testing.T) {
	h := newPFHarness(t, fakeplayfab.Config{}, nil)
	req := pfRequest(uuid.NewString())
	req.NetworkConfiguration.MaxDevices = 0

	_, err := h.client.RequestParty(context.Background(), req)
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, APIRequestPartyService, apiErr.API)
	assert.Equal(t, http.StatusBadRequest, apiErr.HTTPStatus)
	assert.Equal(t, 400, apiErr.Code)
	assert.Equal(t, "BadRequest", apiErr.Status)
	assert.Equal(t, "InvalidParams", apiErr.Name)
	assert.Equal(t, 1000, apiErr.ErrorCode)
	assert.Equal(t, "Invalid input parameters", apiErr.Message)
	assert.Contains(t, apiErr.Details, "MaxDevices")
	assert.NotEmpty(t, apiErr.RequestID)
	assert.False(t, IsRetryable(err))

	for _, want := range []string{"RequestPartyService", "HTTP 400", "InvalidParams", "1000", "Invalid input parameters",
		"MaxDevices: The field MaxDevices must be between 1 and 128.", apiErr.RequestID} {
		assert.Contains(t, err.Error(), want)
	}
	assert.Equal(t, 1, h.fake.Stats().RequestPartyService, "exactly one call")
	assert.Empty(t, h.sleeps.recorded())
	assert.Contains(t, h.logs.String(), "request_id="+apiErr.RequestID)
}

func TestRequestPartyContextStopsRetries(t *testing.T) {
	t.Run("canceled while backing off", func(t *testing.T) {
		h := newPFHarness(t, fakeplayfab.Config{Faults: fakeplayfab.Faults{ErrorRate: 1}}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		h.sleeps.onSleep = func(n int) {
			if n == 3 {
				cancel()
			}
		}

		_, err := h.client.RequestParty(ctx, pfRequest(uuid.NewString()))
		require.ErrorIs(t, err, context.Canceled)
		var apiErr *APIError
		require.ErrorAs(t, err, &apiErr, "the last failure is kept")
		assert.Contains(t, []string{"ServiceUnavailable", "InternalServerError"}, apiErr.Name)
		assert.True(t, IsRetryable(err))
		assert.Equal(t, 3, h.fake.Stats().RequestPartyService)
		assert.Contains(t, err.Error(), "after 3 attempts")
	})

	t.Run("deadline with real waits", func(t *testing.T) {
		h := newPFHarness(t, fakeplayfab.Config{Faults: fakeplayfab.Faults{ErrorRate: 1}}, nil)
		h.client.sleep = nil
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()

		_, err := h.client.RequestParty(ctx, pfRequest(uuid.NewString()))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.GreaterOrEqual(t, h.fake.Stats().RequestPartyService, 1)
	})

	t.Run("retry-after beyond the deadline", func(t *testing.T) {
		h := newPFHarness(t, fakeplayfab.Config{Faults: fakeplayfab.Faults{ThrottleRate: 1, RetryAfter: time.Hour}}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()

		_, err := h.client.RequestParty(ctx, pfRequest(uuid.NewString()))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		var apiErr *APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, "APIClientRequestRateLimitExceeded", apiErr.Name)
		assert.Equal(t, time.Hour, apiErr.RetryAfter)
		assert.Empty(t, h.sleeps.recorded(), "gave up at once instead of waiting past the deadline")
		assert.Equal(t, 1, h.fake.Stats().RequestPartyService)
	})

	t.Run("already done", func(t *testing.T) {
		h := newPFHarness(t, fakeplayfab.Config{}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := h.client.RequestParty(ctx, pfRequest(uuid.NewString()))
		require.ErrorIs(t, err, context.Canceled)
		assert.Zero(t, h.fake.Stats().RequestPartyService)
	})
}

func TestRequestPartyMaxInFlight(t *testing.T) {
	const limit, callers = 3, 12
	var inFlight, peak atomic.Int64
	arrived := make(chan struct{}, callers)
	release := make(chan struct{}) // each send lets one held call through
	hold := pfOnPath("/Party/RequestPartyService", func(n int, w http.ResponseWriter, r *http.Request) bool {
		now := inFlight.Add(1)
		for {
			p := peak.Load()
			if now <= p || peak.CompareAndSwap(p, now) {
				break
			}
		}
		arrived <- struct{}{}
		<-release
		inFlight.Add(-1)
		return false
	})
	h := newPFHarness(t, fakeplayfab.Config{}, hold)
	h.client.MaxInFlight = limit

	var wg sync.WaitGroup
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() {
			_, errs[i] = h.client.RequestParty(context.Background(), pfRequest(uuid.NewString()))
		})
	}
	// With the cap, a new call arrives only when a held one leaves: the
	// surplus callers must not get through while the first are held. Not
	// arriving cannot be waited for, so this one check is bounded in time;
	// it can only pass wrongly, never fail wrongly.
	for range limit {
		<-arrived
	}
	assert.Never(t, func() bool { return inFlight.Load() > limit }, 50*time.Millisecond, time.Millisecond,
		"a call beyond MaxInFlight reached PlayFab")
	// Then let calls through one at a time.
	for range callers - limit {
		release <- struct{}{}
		<-arrived
	}
	for range limit {
		release <- struct{}{}
	}
	wg.Wait()

	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, int64(limit), peak.Load(), "never more than MaxInFlight calls at once")
	assert.Equal(t, callers, h.fake.Stats().RequestPartyService)
}

func TestRequestPartyWaitForSlotHonoursContext(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	hold := pfOnPath("/Party/RequestPartyService", func(n int, w http.ResponseWriter, r *http.Request) bool {
		arrived <- struct{}{}
		<-release
		return false
	})
	h := newPFHarness(t, fakeplayfab.Config{}, hold)
	h.client.MaxInFlight = 1

	firstErr := make(chan error, 1)
	go func() {
		_, err := h.client.RequestParty(context.Background(), pfRequest(uuid.NewString()))
		firstErr <- err
	}()
	<-arrived // the only slot is taken

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := h.client.RequestParty(ctx, pfRequest(uuid.NewString()))
	require.ErrorIs(t, err, context.DeadlineExceeded)

	close(release)
	require.NoError(t, <-firstErr)
	assert.Equal(t, 1, h.fake.Stats().RequestPartyService, "the second call never reached PlayFab")
}

func TestRequestPartyNeverLeaksSecrets(t *testing.T) {
	// echo is a hostile or buggy server that repeats the credentials it got.
	echo := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			creds := r.Header.Get("X-SecretKey") + r.Header.Get("X-EntityToken")
			if r.URL.Path == "/Party/RequestPartyService" && strings.Contains(r.URL.RawQuery, "html") {
				pfReply(502, nil, "<html>"+creds+"</html>")(w)
				return
			}
			if strings.Contains(r.URL.RawQuery, "echo") {
				pfReply(400, map[string]string{"X-RequestId": "req-echo"}, `{"code":400,"status":"BadRequest","error":"InvalidParams",`+
					`"errorCode":1000,"errorMessage":"bad `+creds+`","errorDetails":{"`+creds+`":["was `+creds+`"]}}`)(w)
				return
			}
			next.ServeHTTP(w, r)
		})
	}

	var errs []error
	var tokens []string
	var logs strings.Builder
	run := func(name string, setup func(h *pfHarness, req *PartyRequest) context.Context) {
		t.Run(name, func(t *testing.T) {
			var tokMu sync.Mutex
			capture := func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if tok := r.Header.Get("X-EntityToken"); tok != "" {
						tokMu.Lock()
						tokens = append(tokens, tok)
						tokMu.Unlock()
					}
					echo(next).ServeHTTP(w, r)
				})
			}
			h := newPFHarness(t, fakeplayfab.Config{}, capture)
			req := pfRequest(uuid.NewString())
			ctx := setup(h, &req)
			_, err := h.client.RequestParty(ctx, req)
			require.Error(t, err)
			errs = append(errs, err)
			logs.WriteString(h.logs.String())
		})
	}

	run("wrong secret key", func(h *pfHarness, _ *PartyRequest) context.Context {
		h.client.SecretKey = pfTestSecret + "-rotated"
		return context.Background()
	})
	run("server errors until canceled", func(h *pfHarness, _ *PartyRequest) context.Context {
		h.fake.SetFaults(fakeplayfab.Faults{ErrorRate: 1})
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		h.sleeps.onSleep = func(n int) {
			if n == 2 {
				cancel()
			}
		}
		return ctx
	})
	run("invalid params", func(h *pfHarness, req *PartyRequest) context.Context {
		req.PreferredRegions = nil
		return context.Background()
	})
	run("server echoes credentials in an envelope", func(h *pfHarness, _ *PartyRequest) context.Context {
		h.client.HTTPClient = &http.Client{Transport: pfQuery{"echo", h.srv.Client().Transport}}
		return context.Background()
	})
	run("server echoes credentials in HTML", func(h *pfHarness, _ *PartyRequest) context.Context {
		h.client.HTTPClient = &http.Client{Transport: pfQuery{"html", h.srv.Client().Transport}}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		h.sleeps.onSleep = func(int) { cancel() }
		return ctx
	})
	run("network down", func(h *pfHarness, _ *PartyRequest) context.Context {
		h.srv.Close()
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		h.sleeps.onSleep = func(int) { cancel() }
		return ctx
	})

	require.NotEmpty(t, tokens, "some calls carried an entity token")
	for _, err := range errs {
		assert.NotContains(t, err.Error(), pfTestSecret)
		for _, tok := range tokens {
			assert.NotContains(t, err.Error(), tok)
		}
	}
	assert.NotContains(t, logs.String(), pfTestSecret)
	for _, tok := range tokens {
		assert.NotContains(t, logs.String(), tok)
	}
	assert.Contains(t, logs.String(), "request_id=req-echo", "failures are logged with their X-RequestId")
	assert.Contains(t, logs.String(), redactedText)
}

// pfQuery is a transport that adds a query parameter, which the echo
// handler reads as an instruction.
type pfQuery struct {
	param string
	next  http.RoundTripper
}

func (q pfQuery) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.RawQuery = q.param
	return q.next.RoundTrip(r)
}

func TestRequestPartyRejectsUnusableReplies(t *testing.T) {
	tests := []struct {
		name      string
		reply     func(w http.ResponseWriter)
		wantText  string
		retryable bool
	}{
		{"not JSON", pfReply(200, nil, "hello"), `HTTP 200: reply is not a PlayFab envelope: "hello"`, false},
		{"no data", pfReply(200, nil, `{"code":200,"status":"OK"}`), "neither data nor error", false},
		{"data lacks descriptor", pfReply(200, nil, `{"code":200,"status":"OK","data":{"PartyId":"x"}}`), "lacks", false},
		{"error with data", pfReply(200, nil, `{"code":200,"status":"OK","data":{},"error":"PartyConflict","errorCode":1438}`),
			"PartyConflict (errorCode 1438)", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newPFHarness(t, fakeplayfab.Config{}, pfOnPath("/Party/RequestPartyService",
				func(n int, w http.ResponseWriter, r *http.Request) bool {
					tt.reply(w)
					return true
				}))
			_, err := h.client.RequestParty(context.Background(), pfRequest(uuid.NewString()))
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Contains(t, err.Error(), tt.wantText)
			assert.Equal(t, tt.retryable, IsRetryable(err))
			calls, _ := h.observer.snapshot()
			require.NotEmpty(t, calls)
			assert.NotEqual(t, "RequestPartyService ok", calls[len(calls)-1])
		})
	}
}

func TestRequestPartyNotConfigured(t *testing.T) {
	for _, c := range []*PlayFabClient{
		{SecretKey: "k"},
		{TitleID: "T"},
	} {
		_, err := c.RequestParty(context.Background(), pfRequest(uuid.NewString()))
		assert.ErrorIs(t, err, ErrNotConfigured)
	}
}

func TestPlayFabClientDefaults(t *testing.T) {
	c := &PlayFabClient{TitleID: "AB12"}
	assert.Equal(t, "https://AB12.playfabapi.com", c.baseURL())
	assert.Same(t, c.httpClient(), c.httpClient(), "one default client per PlayFabClient")
	assert.Equal(t, 10*time.Second, c.httpClient().Timeout)
	assert.Equal(t, time.Hour, c.tokenRefreshBefore())
	assert.Equal(t, 100*time.Millisecond, c.retryBase())
	assert.Equal(t, 5*time.Second, c.retryMax())
	assert.Equal(t, slog.Default(), c.logger())
	c.BaseURL = "http://localhost:8090/"
	assert.Equal(t, "http://localhost:8090", c.baseURL())
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// The default HTTP client keeps a connection for every call in flight, so
// rounds of concurrent calls reuse them instead of dialling (and, against
// PlayFab, paying a TLS handshake) for most calls.
func TestDefaultClientReusesConnections(t *testing.T) {
	const inFlight, rounds = 8, 4
	fake := fakeplayfab.New(fakeplayfab.Config{TitleID: "T", SecretKey: pfTestSecret})
	srv := httptest.NewUnstartedServer(fake)
	ln := &countingListener{Listener: srv.Listener}
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	c := &PlayFabClient{BaseURL: srv.URL, TitleID: "T", SecretKey: pfTestSecret, MaxInFlight: inFlight}
	for r := 0; r < rounds; r++ {
		var wg sync.WaitGroup
		for i := 0; i < inFlight; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := c.RequestParty(context.Background(), pfRequest(uuid.NewString()))
				assert.NoError(t, err)
			}()
		}
		wg.Wait()
	}
	assert.LessOrEqual(t, ln.accepted.Load(), int64(inFlight+1),
		"%d calls over at most one connection per call in flight (and the token's)", rounds*inFlight)
}

func TestAPIErrorString(t *testing.T) {
	err := &APIError{
		API: APIRequestPartyService, HTTPStatus: 429, Code: 429, Status: "TooManyRequests",
		Name: "APIClientRequestRateLimitExceeded", ErrorCode: 1199, Message: "slow down",
		Details:    map[string][]string{"b": {"two"}, "a": {"one", "uno"}},
		RetryAfter: 1500 * time.Millisecond, RequestID: "r-1",
	}
	assert.Equal(t, "playfab RequestPartyService: HTTP 429 APIClientRequestRateLimitExceeded (errorCode 1199): "+
		"slow down [a: one uno; b: two] (retry after 1.5s) (request id r-1)", err.Error())
}

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"503", &APIError{HTTPStatus: 503}, true},
		{"500", &APIError{HTTPStatus: 500}, true},
		{"429", &APIError{HTTPStatus: 429}, true},
		{"400 InvalidParams", &APIError{HTTPStatus: 400, Name: "InvalidParams"}, false},
		{"401 NotAuthenticated", &APIError{HTTPStatus: 401, Name: "NotAuthenticated"}, false},
		{"409 PartyConflict", &APIError{HTTPStatus: 409, Name: "PartyConflict"}, false},
		{"name only", &APIError{HTTPStatus: 400, Name: "PartyTooManyRequests"}, true},
		{"PartyUnavailable", &APIError{HTTPStatus: 400, Name: "PartyUnavailable"}, true},
		{"network", &transportError{api: APIRequestPartyService, err: io.ErrUnexpectedEOF}, true},
		{"canceled", &transportError{api: APIRequestPartyService, err: context.Canceled}, false},
		{"wrapped", errors.Join(context.DeadlineExceeded, &APIError{HTTPStatus: 503}), true},
		{"other", errors.New("boom"), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, IsRetryable(tt.err))
		})
	}
}

func TestBackoff(t *testing.T) {
	base, ceil := 100*time.Millisecond, 5*time.Second
	for retry := 1; retry <= 12; retry++ {
		upper := min(ceil, base<<retry)
		for range 200 {
			d := backoff(retry, base, ceil, 0)
			require.GreaterOrEqual(t, d, base)
			require.LessOrEqual(t, d, upper)
		}
	}
	assert.Equal(t, 7*time.Second, backoff(1, base, ceil, 7*time.Second), "retry-after above the ceiling is honoured")
	assert.GreaterOrEqual(t, backoff(3, base, ceil, 150*time.Millisecond), 150*time.Millisecond)
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	secs := func(f float64) *float64 { return &f }
	tests := []struct {
		name   string
		body   *float64
		header string
		want   time.Duration
	}{
		{"none", nil, "", 0},
		{"body fraction", secs(0.05), "1", 50 * time.Millisecond},
		{"header seconds", nil, "3", 3 * time.Second},
		{"header date", nil, now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second},
		{"header garbage", nil, "soon", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, parseRetryAfter(tt.body, tt.header, now))
		})
	}
}
