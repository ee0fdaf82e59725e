package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lobbyd/lobbyd/internal/queuefile"
	"github.com/lobbyd/lobbyd/lobby"
	"github.com/lobbyd/lobbyd/matchmaker"
	"github.com/lobbyd/lobbyd/partyalloc"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/web"
)

// routes lists every HTTP route lobbyd serves.
func routes(cfg config, st *store.Store, gw *lobby.Gateway, mm *matchmaker.Service, queues func() queuefile.File, auth *lobby.Authenticator, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/ws", gw)
	if cfg.DevAuth {
		mux.Handle("POST /v1/dev/token", lobby.HandleDevToken(auth))
	}
	mux.Handle("GET /v1/queues", handleQueues(mm, queues))
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(st, gw.Ready(), gw.Draining))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /", web.Handler())
	return mux
}

// debugRoutes serves Go's profiles, on the separate debug listener only.
func debugRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz reports whether this node can serve: the gateway accepts
// connections (it is not draining) and Redis answers.
func handleReadyz(st *store.Store, gatewayReady <-chan struct{}, draining func() bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-gatewayReady:
		default:
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
			return
		}
		if draining() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := st.Ping(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "redis unreachable"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// queuesMaxAge is how old the queues' status served by GET /v1/queues may be.
const queuesMaxAge = time.Second

// queueJSON is a queue as GET /v1/queues serves it: the matchmaker's
// status with the queue's PlayFab network settings beside it, where they
// have always been served (studios build against it).
type queueJSON struct {
	matchmaker.QueueStatus
	partyalloc.Network
}

// handleQueues serves GET /v1/queues from a status at most queuesMaxAge
// old: the route needs no token, so a flood of it must not reach Redis.
// Requests that find the copy stale wait for one refresh between them.
func handleQueues(mm *matchmaker.Service, queues func() queuefile.File) http.Handler {
	var (
		mu     sync.Mutex
		status []queueJSON
		at     time.Time
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if time.Since(at) >= queuesMaxAge {
			s, err := mm.Status(r.Context())
			if err != nil {
				mu.Unlock()
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "queue depths unavailable"})
				return
			}
			networks := make(map[string]partyalloc.Network)
			for _, q := range queues().Queues {
				networks[q.Name] = q.PlayFab
			}
			fresh := make([]queueJSON, len(s))
			for i, q := range s {
				fresh[i] = queueJSON{q, networks[q.Name]}
			}
			status, at = fresh, time.Now()
		}
		current := status
		mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=1")
		writeJSON(w, http.StatusOK, map[string]any{"queues": current})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
