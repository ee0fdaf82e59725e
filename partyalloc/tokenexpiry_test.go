package partyalloc

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
)

// handlerTransport serves requests with an http.Handler in the caller's
// goroutine: no socket, so it runs inside a synctest bubble.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	// A server reads header names canonicalised; PlayFab's are sent as
	// PlayFab spells them.
	in := r.Clone(r.Context())
	in.Header = http.Header{}
	for k, vs := range r.Header {
		for _, v := range vs {
			in.Header.Add(k, v)
		}
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, in)
	return rec.Result(), nil
}

// Tokens that expire every 2 seconds during 8 seconds of allocations from
// four callers at once, on synctest's fake clock (the fake PlayFab and the
// client both read time.Now): no allocation fails, tokens are replaced as
// they expire, and fetches stay near one per lifetime.
func TestRequestPartyAcrossTokenExpiries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lifetime = 2 * time.Second
		fake := fakeplayfab.New(fakeplayfab.Config{SecretKey: pfTestSecret, TokenLifetime: lifetime, Logger: slog.New(slog.DiscardHandler),
			Faults: fakeplayfab.Faults{Latency: 30 * time.Millisecond, Jitter: 20 * time.Millisecond}})
		client := &PlayFabClient{
			BaseURL: "http://playfab.test", TitleID: "FAKE", SecretKey: pfTestSecret,
			HTTPClient: &http.Client{Transport: handlerTransport{fake}},
			Logger:     slog.New(slog.DiscardHandler),
		}

		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		calls := 0
		for range 4 {
			wg.Go(func() {
				for time.Since(start) < 4*lifetime {
					_, err := client.RequestParty(context.Background(), pfRequest(uuid.NewString()))
					assert.NoError(t, err, "no allocation fails across token expiries")
					mu.Lock()
					calls++
					mu.Unlock()
					time.Sleep(100 * time.Millisecond) // the next match is formed a little later
				}
			})
		}
		wg.Wait()

		elapsed := time.Since(start)
		stats := fake.Stats()
		t.Logf("%d allocations over %v with %d token fetches", calls, elapsed, stats.GetEntityToken)
		require.Positive(t, calls)
		assert.GreaterOrEqual(t, stats.GetEntityToken, 4, "tokens did expire and were replaced")
		assert.LessOrEqual(t, stats.GetEntityToken, int(elapsed/(lifetime*4/5))+2, "about one fetch per lifetime")
		assert.Equal(t, calls, stats.RequestPartyService, "no call was refused for an expired token")
	})
}

// A caller waiting for another caller's token fetch is not failed when that
// caller gives up and its fetch ends with it: the waiter fetches again.
func TestRequestPartyWaiterOutlivesTheFetchingCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := fakeplayfab.New(fakeplayfab.Config{SecretKey: pfTestSecret, Logger: slog.New(slog.DiscardHandler)})
		var fetches int
		handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/Authentication/GetEntityToken" {
				if fetches++; fetches == 1 {
					<-r.Context().Done() // the first fetch hangs until its caller gives up
					return
				}
			}
			fake.ServeHTTP(w, r)
		})
		client := &PlayFabClient{
			BaseURL: "http://playfab.test", TitleID: "FAKE", SecretKey: pfTestSecret,
			HTTPClient: &http.Client{Transport: handlerTransport{handler}},
			Logger:     slog.New(slog.DiscardHandler),
		}

		fetcherCtx, giveUp := context.WithCancel(context.Background())
		var fetcherErr, waiterErr error
		var wg sync.WaitGroup
		wg.Go(func() { _, fetcherErr = client.RequestParty(fetcherCtx, pfRequest(uuid.NewString())) })
		synctest.Wait() // the first fetch hangs
		wg.Go(func() { _, waiterErr = client.RequestParty(context.Background(), pfRequest(uuid.NewString())) })
		synctest.Wait() // the waiter waits for it
		require.Equal(t, 1, fetches, "the waiter joined the fetch under way")
		giveUp()
		wg.Wait()

		assert.ErrorIs(t, fetcherErr, context.Canceled)
		assert.NoError(t, waiterErr)
		assert.Equal(t, 2, fetches)
		assert.Equal(t, 1, fake.Stats().RequestPartyService)
	})
}
