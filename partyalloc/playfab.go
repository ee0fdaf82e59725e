package partyalloc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/lobbyd/lobbyd/internal/wait"
)

// Names of the PlayFab APIs the client calls, as passed to an Observer and
// set in APIError.API.
const (
	APIGetEntityToken      = "GetEntityToken"
	APIRequestPartyService = "RequestPartyService"
)

const (
	pathGetEntityToken      = "/Authentication/GetEntityToken"
	pathRequestPartyService = "/Party/RequestPartyService"

	defaultTokenRefreshBefore = time.Hour
	defaultPlayFabMaxInFlight = 64
	defaultPlayFabRetryBase   = 100 * time.Millisecond
	defaultPlayFabRetryMax    = 5 * time.Second

	// maxPlayFabReplyBytes bounds how much of a reply is read. PlayFab's
	// replies here are a few hundred bytes; anything near this is not
	// PlayFab.
	maxPlayFabReplyBytes = 1 << 20
	// replySnippetBytes is how much of a non-JSON reply goes into an error.
	replySnippetBytes = 64
	redactedText      = "[REDACTED]"
)

// ErrNotConfigured is returned by RequestParty when the client has no title id
// or no secret key, so it cannot authenticate to PlayFab.
var ErrNotConfigured = errors.New("partyalloc: PlayFab title id or secret key is not set")

// playFabAttemptTimeout bounds one HTTP attempt of the default client; the
// caller's context bounds the whole call.
const playFabAttemptTimeout = 10 * time.Second

// retryablePlayFabErrors are PlayFab error names that mean "try again later",
// whatever HTTP status carries them.
var retryablePlayFabErrors = map[string]bool{
	"ServiceUnavailable":                    true,
	"InternalServerError":                   true,
	"DownstreamServiceUnavailable":          true,
	"APIClientRequestRateLimitExceeded":     true,
	"PartyRequestsThrottledFromRateLimiter": true,
	"PartyTooManyRequests":                  true,
	"PartyInternalServerError":              true,
	"PartyUnavailable":                      true,
}

// Observer receives call outcomes, e.g. to count them in Prometheus. Methods
// must be cheap and safe for concurrent use.
type Observer interface {
	// PlayFabCall reports one HTTP attempt to api (APIGetEntityToken or
	// APIRequestPartyService) that took d. outcome is "ok", the PlayFab error
	// name (such as "ServiceUnavailable"), "invalid_response" for a reply
	// that is not a usable PlayFab envelope, "network" for a transport
	// failure or "canceled" when the caller's context ended the attempt.
	PlayFabCall(api string, outcome string, d time.Duration)
	// PlayFabRetry reports that a failed call to api is about to be retried.
	PlayFabRetry(api string)
}

// PlayFabClient calls PlayFab's REST API for one title: it caches the title's
// entity token and requests Party networks. Zero-value fields get defaults.
// A PlayFabClient is safe for concurrent use and must not be copied after
// first use.
type PlayFabClient struct {
	// BaseURL is the API root without a trailing slash. Default
	// "https://{TitleID}.playfabapi.com".
	BaseURL string
	// TitleID is the PlayFab title id.
	TitleID string
	// SecretKey is the title secret key, sent as X-SecretKey to
	// GetEntityToken only. It is never logged nor put in an error.
	SecretKey string
	// HTTPClient sends the requests. Default: a client with a 10s timeout
	// per attempt.
	HTTPClient *http.Client
	// Logger receives one line per failed attempt, with the API, HTTP
	// status, PlayFab error name and X-RequestId. Default slog.Default().
	Logger *slog.Logger
	// TokenRefreshBefore is how long before TokenExpiration the cached
	// entity token is replaced. Default 1h. A token that lives less than
	// five times this is replaced at four fifths of its lifetime.
	TokenRefreshBefore time.Duration
	// MaxInFlight caps concurrent RequestPartyService HTTP calls. Default 64.
	MaxInFlight int
	// RetryBase and RetryMax bound the exponential backoff between
	// attempts. Defaults 100ms and 5s. A server's retry-after is honoured
	// even when it is longer than RetryMax.
	RetryBase, RetryMax time.Duration
	// Observer, if set, is told about every attempt and retry.
	Observer Observer

	// now and sleep replace time.Now and wait.Sleep in tests.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	semOnce sync.Once
	sem     chan struct{} // one slot per RequestPartyService call in flight

	clientOnce    sync.Once
	defaultClient *http.Client // used when HTTPClient is nil

	// tokenFetches runs one GetEntityToken at a time; concurrent callers
	// that need a token share its result.
	tokenFetches singleflight.Group
	mu           sync.Mutex
	token        entityToken // zero value: no token cached
}

// entityToken is a cached PlayFab entity token.
type entityToken struct {
	value     string
	fetchedAt time.Time
	expires   time.Time
	refreshAt time.Time
}

// fetchCanceled is a shared GetEntityToken fetch that failed because the
// context of the caller that ran it ended, which says nothing about the
// other callers waiting for it: they try again.
type fetchCanceled struct{ err error }

func (e *fetchCanceled) Error() string { return e.err.Error() }
func (e *fetchCanceled) Unwrap() error { return e.err }

// APIError is a failed PlayFab call: an error envelope, or a reply that is
// not a usable envelope (then Name is empty and Message says why). Its text
// never contains the secret key or an entity token.
type APIError struct {
	// API is the PlayFab API called, APIGetEntityToken or
	// APIRequestPartyService.
	API string
	// HTTPStatus is the reply's HTTP status code.
	HTTPStatus int
	// Code and Status are the envelope's "code" and "status".
	Code   int
	Status string
	// Name is the envelope's "error", such as "InvalidParams".
	Name string
	// ErrorCode is the envelope's numeric "errorCode", such as 1000.
	ErrorCode int
	// Message is the envelope's "errorMessage".
	Message string
	// Details is the envelope's "errorDetails": field name -> messages.
	Details map[string][]string
	// RetryAfter is how long the server asked the client to wait, from
	// "retryAfterSeconds" or the Retry-After header; zero when not given.
	RetryAfter time.Duration
	// RequestID is the reply's X-RequestId header, for PlayFab support.
	RequestID string
}

// Error names the API, HTTP status, PlayFab error name and code, message,
// details and request id.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "playfab %s: HTTP %d", e.API, e.HTTPStatus)
	if e.Name != "" {
		fmt.Fprintf(&b, " %s (errorCode %d)", e.Name, e.ErrorCode)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if len(e.Details) > 0 {
		fields := make([]string, 0, len(e.Details))
		for f := range e.Details {
			fields = append(fields, f)
		}
		sort.Strings(fields)
		b.WriteString(" [")
		for i, f := range fields {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s: %s", f, strings.Join(e.Details[f], " "))
		}
		b.WriteString("]")
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %v)", e.RetryAfter)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request id %s)", e.RequestID)
	}
	return b.String()
}

// retryable reports whether a later attempt may succeed.
func (e *APIError) retryable() bool {
	return e.HTTPStatus == http.StatusTooManyRequests || e.HTTPStatus >= 500 || retryablePlayFabErrors[e.Name]
}

// outcome is the Observer outcome of the failed attempt.
func (e *APIError) outcome() string {
	if e.Name == "" {
		return "invalid_response"
	}
	return e.Name
}

// transportError is an attempt that got no HTTP reply: connection refused or
// reset, timeout, TLS failure.
type transportError struct {
	api string
	err error
}

func (e *transportError) Error() string { return "playfab " + e.api + ": " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// IsRetryable reports whether err, returned by RequestParty, is a transient
// failure that a later attempt may get past: a network error, HTTP 5xx or
// 429, or a PlayFab error name that means overload or outage. An error
// returned because the context ended reports the nature of the last failed
// attempt, so a deadline hit while PlayFab was unavailable is retryable,
// while a validation error is not.
func IsRetryable(err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.retryable()
	}
	var tErr *transportError
	return errors.As(err, &tErr) && !errors.Is(tErr.err, context.Canceled)
}

// isEntityTokenError reports whether a failure means the entity token was
// not accepted, so that a fresh token may succeed.
func isEntityTokenError(err error) bool {
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.API != APIRequestPartyService {
		return false
	}
	switch apiErr.Name {
	case "EntityTokenMissing", "EntityTokenInvalid", "EntityTokenExpired", "EntityTokenRevoked":
		return true
	}
	return apiErr.ErrorCode >= 1334 && apiErr.ErrorCode <= 1337
}

// RequestParty asks PlayFab for a Party network, with an entity token from
// the cache. It retries transient failures with jittered exponential
// backoff, never sooner than the server asked, until it succeeds, meets a
// failure that retrying cannot fix, or ctx is done; ctx carries the caller's
// deadline for the whole allocation. An entity token PlayFab rejects is
// replaced and the call repeated, once per call.
func (c *PlayFabClient) RequestParty(ctx context.Context, req PartyRequest) (Party, error) {
	if c.TitleID == "" || c.SecretKey == "" {
		return Party{}, ErrNotConfigured
	}
	body, err := json.Marshal(req)
	if err != nil {
		return Party{}, fmt.Errorf("request party: encode request: %w", err)
	}
	var (
		lastErr        error
		tokenRefreshed bool
		retries        int
	)
	for attempt := 1; ; attempt++ {
		party, usedToken, err := c.requestPartyOnce(ctx, body)
		if err == nil {
			return party, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			// An attempt cut short by ctx says nothing about PlayFab;
			// one that failed on its own as ctx ended does.
			if !errors.Is(err, ctxErr) {
				lastErr = err
			}
			return Party{}, stoppedError(ctxErr, attempt, lastErr)
		}
		lastErr = err
		if !tokenRefreshed && isEntityTokenError(err) {
			tokenRefreshed = true
			c.invalidateToken(usedToken)
			c.logFailure(err, attempt, "refreshing entity token and retrying")
			c.observeRetry(err)
			continue
		}
		if !IsRetryable(err) {
			c.logFailure(err, attempt, "not retrying")
			return Party{}, fmt.Errorf("request party: %w", err)
		}
		retries++
		delay := backoff(retries, c.retryBase(), c.retryMax(), serverRetryAfter(err))
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
			c.logFailure(err, attempt, "giving up: the next retry would pass the deadline")
			return Party{}, fmt.Errorf("request party: %w: the retry in %v would pass it, after %d attempts; last error: %w",
				context.DeadlineExceeded, delay, attempt, err)
		}
		c.logFailure(err, attempt, "retrying", slog.Duration("retry_in", delay))
		c.observeRetry(err)
		if err := c.sleepFunc()(ctx, delay); err != nil {
			return Party{}, stoppedError(err, attempt, lastErr)
		}
	}
}

// stoppedError is the error RequestParty returns when ctx ends its retries.
func stoppedError(ctxErr error, attempts int, lastErr error) error {
	if lastErr == nil {
		return fmt.Errorf("request party: %w", ctxErr)
	}
	return fmt.Errorf("request party: %w after %d attempts; last error: %w", ctxErr, attempts, lastErr)
}

// requestPartyOnce makes one RequestPartyService attempt, fetching an entity
// token first if none is cached. It returns the token it used, so that a
// rejection invalidates that token and not a newer one.
func (c *PlayFabClient) requestPartyOnce(ctx context.Context, body []byte) (Party, string, error) {
	tok, err := c.entityToken(ctx)
	if err != nil {
		return Party{}, "", err
	}
	if err := c.acquire(ctx); err != nil {
		return Party{}, tok.value, err
	}
	defer c.release()
	var party Party
	err = c.post(ctx, APIRequestPartyService, pathRequestPartyService, "X-EntityToken", tok.value, body, &party, func() string {
		if party.PartyID == "" || party.SerializedNetworkDescriptor == "" || party.InvitationID == "" {
			return "reply lacks PartyId, SerializedNetworkDescriptor or InvitationId"
		}
		return ""
	})
	return party, tok.value, err
}

// entityToken returns a fresh cached token or fetches one. Concurrent
// callers share one fetch. While a due refresh is under way or failing, the
// old token is used until it expires.
func (c *PlayFabClient) entityToken(ctx context.Context) (entityToken, error) {
	for {
		now := c.clock()
		c.mu.Lock()
		old := c.token
		if old.value != "" && now.Before(old.refreshAt) {
			c.mu.Unlock()
			return old, nil
		}
		if old.value != "" && now.Before(old.expires) {
			// Due but still usable: this caller refreshes it. Moving
			// refreshAt to the expiry claims the refresh, so everyone else
			// uses the old token meanwhile instead of waiting.
			c.token.refreshAt = old.expires
			c.mu.Unlock()
			return c.refreshToken(ctx, old)
		}
		c.mu.Unlock()
		tok, err := c.sharedFetch(ctx)
		if canceled := (*fetchCanceled)(nil); errors.As(err, &canceled) {
			if ctx.Err() == nil {
				continue // the fetch was ended by another caller's context
			}
			err = canceled.err
		}
		return tok, err
	}
}

// refreshToken replaces old, which is due but usable. If the fetch fails,
// old stays, to be refreshed by the next caller, and is returned.
func (c *PlayFabClient) refreshToken(ctx context.Context, old entityToken) (entityToken, error) {
	tok, err := c.sharedFetch(ctx)
	if err == nil {
		return tok, nil
	}
	c.mu.Lock()
	if c.token.value == old.value {
		c.token.refreshAt = old.refreshAt // no longer claimed
	}
	c.mu.Unlock()
	if canceled := (*fetchCanceled)(nil); errors.As(err, &canceled) {
		if ctx.Err() == nil {
			// It joined a fetch that another caller's context ended (one
			// that gave up its refresh): the next caller refreshes.
			return old, nil
		}
		return entityToken{}, canceled.err
	}
	if ctx.Err() != nil {
		return entityToken{}, err
	}
	c.logFailure(err, 1, "using the current entity token until it expires")
	return old, nil
}

// sharedFetch fetches a token and caches it, or waits for the fetch already
// under way, until ctx ends. The fetch runs in a goroutine singleflight
// starts, on the context of the caller that started it: it ends when the
// call returns, at the latest as soon as the HTTP request sees that
// context end. A failure is never cached.
func (c *PlayFabClient) sharedFetch(ctx context.Context) (entityToken, error) {
	results := c.tokenFetches.DoChan(APIGetEntityToken, func() (any, error) {
		tok, err := c.fetchToken(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, &fetchCanceled{err: err}
			}
			return nil, err
		}
		c.mu.Lock()
		c.token = tok
		c.mu.Unlock()
		return tok, nil
	})
	select {
	case r := <-results:
		if r.Err != nil {
			return entityToken{}, r.Err
		}
		return r.Val.(entityToken), nil
	case <-ctx.Done():
		return entityToken{}, ctx.Err()
	}
}

// fetchToken calls GetEntityToken with the title secret key.
func (c *PlayFabClient) fetchToken(ctx context.Context) (entityToken, error) {
	fetchedAt := c.clock()
	var data struct {
		EntityToken     string    `json:"EntityToken"`
		TokenExpiration time.Time `json:"TokenExpiration"`
	}
	err := c.post(ctx, APIGetEntityToken, pathGetEntityToken, "X-SecretKey", c.SecretKey, []byte("{}"), &data, func() string {
		if data.EntityToken == "" || data.TokenExpiration.IsZero() {
			return "reply lacks EntityToken or TokenExpiration"
		}
		return ""
	})
	if err != nil {
		return entityToken{}, err
	}
	before := c.tokenRefreshBefore()
	// A short-lived token is replaced at four fifths of its life: about one
	// fetch per lifetime, with room for a slow fetch before it expires.
	if lifetime := data.TokenExpiration.Sub(fetchedAt); before > lifetime/5 {
		before = lifetime / 5
	}
	return entityToken{
		value:     data.EntityToken,
		fetchedAt: fetchedAt,
		expires:   data.TokenExpiration,
		refreshAt: data.TokenExpiration.Add(-before),
	}, nil
}

// invalidateToken drops the cached token if it is still the one PlayFab
// rejected; a newer one fetched meanwhile by another caller stays.
func (c *PlayFabClient) invalidateToken(rejected string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token.value == rejected {
		c.token = entityToken{}
	}
}

// playfabEnvelope is PlayFab's reply wrapper, for success and failure alike.
type playfabEnvelope struct {
	Code              int                 `json:"code"`
	Status            string              `json:"status"`
	Data              json.RawMessage     `json:"data"`
	Error             string              `json:"error"`
	ErrorCode         int                 `json:"errorCode"`
	ErrorMessage      string              `json:"errorMessage"`
	ErrorDetails      map[string][]string `json:"errorDetails"`
	RetryAfterSeconds *float64            `json:"retryAfterSeconds"`
}

// post makes one HTTP attempt to a PlayFab API, authenticated by header
// authHeader: authValue, and decodes the reply's data into out. check
// returns what is missing from a decoded reply, or "".
func (c *PlayFabClient) post(ctx context.Context, api, path, authHeader, authValue string, body []byte, out any, check func() string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL()+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("playfab %s: build request: %w", api, err)
	}
	req.Header.Set("Content-Type", "application/json")
	// Sent as PlayFab spells it; Header.Set would canonicalise the name.
	req.Header[authHeader] = []string{authValue}

	start := time.Now()
	resp, err := c.httpClient().Do(req)
	if err != nil {
		c.observeCall(api, transportOutcome(ctx), time.Since(start))
		return &transportError{api: api, err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxPlayFabReplyBytes))
	if err != nil {
		c.observeCall(api, transportOutcome(ctx), time.Since(start))
		return &transportError{api: api, err: fmt.Errorf("read reply (HTTP %d): %w", resp.StatusCode, err)}
	}
	apiErr := c.decode(api, resp, raw, authValue, out, check)
	if apiErr != nil {
		c.observeCall(api, apiErr.outcome(), time.Since(start))
		return apiErr
	}
	c.observeCall(api, "ok", time.Since(start))
	return nil
}

// decode parses a PlayFab reply of any HTTP status. It returns nil when the
// envelope holds data and no error, and out then holds the data.
func (c *PlayFabClient) decode(api string, resp *http.Response, raw []byte, authValue string, out any, check func() string) *APIError {
	redact := func(s string) string {
		for _, secret := range []string{c.SecretKey, authValue} {
			if secret != "" {
				s = strings.ReplaceAll(s, secret, redactedText)
			}
		}
		return s
	}
	fail := &APIError{
		API:        api,
		HTTPStatus: resp.StatusCode,
		RequestID:  resp.Header.Get("X-RequestId"),
	}
	var env playfabEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		fail.Message = "reply is not a PlayFab envelope: " + strconv.Quote(redact(replySnippet(raw)))
		return fail
	}
	fail.Code, fail.Status = env.Code, env.Status
	hasData := len(env.Data) > 0 && !bytes.Equal(env.Data, []byte("null"))
	if env.Error == "" && hasData {
		if err := json.Unmarshal(env.Data, out); err != nil {
			fail.Message = "malformed data: " + redact(err.Error())
			return fail
		}
		if problem := check(); problem != "" {
			fail.Message = problem
			return fail
		}
		return nil
	}
	fail.Name = env.Error
	fail.ErrorCode = env.ErrorCode
	fail.Message = redact(env.ErrorMessage)
	if fail.Name == "" && fail.Message == "" {
		fail.Message = "reply has neither data nor error"
	}
	if len(env.ErrorDetails) > 0 {
		fail.Details = make(map[string][]string, len(env.ErrorDetails))
		for field, msgs := range env.ErrorDetails {
			clean := make([]string, len(msgs))
			for i, m := range msgs {
				clean[i] = redact(m)
			}
			fail.Details[redact(field)] = clean
		}
	}
	fail.RetryAfter = parseRetryAfter(env.RetryAfterSeconds, resp.Header.Get("Retry-After"), c.clock())
	return fail
}

// parseRetryAfter prefers the body's retryAfterSeconds, which may be
// fractional, over the header, which counts whole seconds or is a date.
func parseRetryAfter(seconds *float64, header string, now time.Time) time.Duration {
	if seconds != nil && *seconds > 0 {
		return time.Duration(*seconds * float64(time.Second))
	}
	if header == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(header, 64); err == nil && n > 0 {
		return time.Duration(n * float64(time.Second))
	}
	if t, err := http.ParseTime(header); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// serverRetryAfter is the wait the server asked for in err, if any.
func serverRetryAfter(err error) time.Duration {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.RetryAfter
	}
	return 0
}

// replySnippet is the start of a reply, for an error message.
func replySnippet(raw []byte) string {
	if len(raw) > replySnippetBytes {
		raw = raw[:replySnippetBytes]
	}
	return strings.ToValidUTF8(string(raw), "?")
}

func transportOutcome(ctx context.Context) string {
	if ctx.Err() != nil {
		return "canceled"
	}
	return "network"
}

// logFailure logs a failed attempt. err is an APIError or a transportError
// (or a context error), whose texts are free of secrets.
func (c *PlayFabClient) logFailure(err error, attempt int, action string, extra ...slog.Attr) {
	attrs := []slog.Attr{
		slog.String("api", failedAPI(err)),
		slog.Int("attempt", attempt),
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		attrs = append(attrs,
			slog.Int("status", apiErr.HTTPStatus),
			slog.String("error_name", apiErr.Name),
			slog.Int("error_code", apiErr.ErrorCode),
			slog.String("request_id", apiErr.RequestID),
		)
	}
	attrs = append(attrs, extra...)
	attrs = append(attrs, slog.String("err", err.Error()))
	c.logger().LogAttrs(context.Background(), slog.LevelWarn, "playfab call failed, "+action, attrs...)
}

// failedAPI names the API whose call produced err.
func failedAPI(err error) string {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.API
	}
	var tErr *transportError
	if errors.As(err, &tErr) {
		return tErr.api
	}
	return APIRequestPartyService
}

func (c *PlayFabClient) observeCall(api, outcome string, d time.Duration) {
	if c.Observer != nil {
		c.Observer.PlayFabCall(api, outcome, d)
	}
}

func (c *PlayFabClient) observeRetry(err error) {
	if c.Observer != nil {
		c.Observer.PlayFabRetry(failedAPI(err))
	}
}

// acquire takes a RequestPartyService slot, or fails when ctx is done first.
func (c *PlayFabClient) acquire(ctx context.Context) error {
	c.semOnce.Do(func() { c.sem = make(chan struct{}, c.maxInFlight()) })
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *PlayFabClient) release() { <-c.sem }

func (c *PlayFabClient) baseURL() string {
	if c.BaseURL != "" {
		return strings.TrimSuffix(c.BaseURL, "/")
	}
	return "https://" + c.TitleID + ".playfabapi.com"
}

// httpClient returns HTTPClient, or the client's own default: one that keeps
// an idle connection for every call that may be in flight. (Go's default
// transport keeps two per host, so at 64 calls in flight most calls would
// pay a new TCP and TLS handshake.)
func (c *PlayFabClient) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	c.clientOnce.Do(func() {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = c.maxInFlight() + 8 // token calls too
		t.MaxIdleConns = 2 * t.MaxIdleConnsPerHost
		c.defaultClient = &http.Client{Timeout: playFabAttemptTimeout, Transport: t}
	})
	return c.defaultClient
}

func (c *PlayFabClient) maxInFlight() int {
	if c.MaxInFlight > 0 {
		return c.MaxInFlight
	}
	return defaultPlayFabMaxInFlight
}

func (c *PlayFabClient) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

func (c *PlayFabClient) tokenRefreshBefore() time.Duration {
	if c.TokenRefreshBefore > 0 {
		return c.TokenRefreshBefore
	}
	return defaultTokenRefreshBefore
}

func (c *PlayFabClient) retryBase() time.Duration {
	if c.RetryBase > 0 {
		return c.RetryBase
	}
	return defaultPlayFabRetryBase
}

func (c *PlayFabClient) retryMax() time.Duration {
	if c.RetryMax > 0 {
		return max(c.RetryMax, c.retryBase())
	}
	return max(defaultPlayFabRetryMax, c.retryBase())
}

func (c *PlayFabClient) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

func (c *PlayFabClient) sleepFunc() func(context.Context, time.Duration) error {
	if c.sleep != nil {
		return c.sleep
	}
	return wait.Sleep
}
