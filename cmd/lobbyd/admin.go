package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/lobby"
	"github.com/lobbyd/lobbyd/matchmaker"
	"github.com/lobbyd/lobbyd/partyalloc"
	"github.com/lobbyd/lobbyd/store"
	"github.com/lobbyd/lobbyd/web"
)

// The operator side (docs/admin.md): a console page and a JSON API on
// their own listener (LOBBYD_ADMIN_ADDR), every API call with the bearer
// token LOBBYD_ADMIN_TOKEN. Any node answers for the whole deployment: what
// it shows comes from Redis (heartbeats, the queue leaders' figures,
// matches), and an action on a player connected elsewhere travels on the
// node channel.

// heartbeatEvery is how often a node writes its heartbeat; a node whose
// last one is older than nodeGoneAfter is shown as gone.
const (
	heartbeatEvery = 5 * time.Second
	nodeGoneAfter  = 3 * heartbeatEvery
	pruneEvery     = 12 // heartbeats: about once a minute
)

// admin serves the admin API.
type admin struct {
	cfg      config
	st       *store.Store
	gw       *lobby.Gateway
	mm       *matchmaker.Service
	qc       *queueConfig
	self     func() domain.NodeInfo // this node's figures, live
	log      *slog.Logger
	actions  *prometheus.CounterVec
	tokenSum [sha256.Size]byte
}

func newAdmin(cfg config, st *store.Store, gw *lobby.Gateway, mm *matchmaker.Service, qc *queueConfig,
	self func() domain.NodeInfo, log *slog.Logger, reg prometheus.Registerer) *admin {
	a := &admin{cfg: cfg, st: st, gw: gw, mm: mm, qc: qc, self: self, log: log,
		tokenSum: sha256.Sum256([]byte(cfg.AdminToken)),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lobbyd_admin_actions_total", Help: "Operator actions taken through this node's admin API, by action."}, []string{"action"}),
	}
	reg.MustRegister(a.actions)
	return a
}

// routes lists the admin listener's routes.
func (a *admin) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /admin/", http.StripPrefix("/admin", web.AdminHandler()))
	mux.Handle("GET /{$}", http.RedirectHandler("/admin/", http.StatusFound))
	api := func(pattern string, h func(r *http.Request) (any, error)) {
		mux.Handle(pattern, a.authorized(h))
	}
	api("GET /admin/api/queues", a.getQueues)
	api("GET /admin/api/nodes", a.getNodes)
	api("GET /admin/api/matches", a.getMatches)
	api("GET /admin/api/matches/{id}", a.getMatch)
	api("GET /admin/api/playfab", a.getPlayFab)
	api("GET /admin/api/players/{id}", a.getPlayer)
	api("GET /admin/api/lobbies/{id}", a.getLobby)
	api("POST /admin/api/players/{id}/cancel-ticket", a.cancelTicket)
	api("POST /admin/api/players/{id}/disconnect", a.disconnect)
	api("POST /admin/api/lobbies/{id}/kick", a.kick)
	api("POST /admin/api/lobbies/{id}/close", a.closeLobby)
	api("POST /admin/api/nodes/{id}/drain", a.drain)
	api("POST /admin/api/queues/reload", a.reload)
	return mux
}

// apiError is an admin API error with its HTTP status.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func notFound(msg string) error   { return &apiError{http.StatusNotFound, msg} }
func badRequest(msg string) error { return &apiError{http.StatusBadRequest, msg} }

// authorized checks the bearer token, then runs h and writes its answer as
// JSON: 401 without the token, 404 for what does not exist, 409 for an
// action that is too late, 503 when Redis is unavailable.
func (a *admin) authorized(h func(r *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(token))
		if !ok || subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lobbyd-admin"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized: send Authorization: Bearer <LOBBYD_ADMIN_TOKEN>"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		v, err := h(r.WithContext(ctx))
		var ae *apiError
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, v)
		case errors.As(err, &ae):
			writeJSON(w, ae.status, map[string]string{"error": ae.msg})
		case errors.Is(err, domain.ErrNotFound):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
		case errors.Is(err, domain.ErrConflict):
			writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		case errors.Is(err, domain.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "redis unavailable"})
		default:
			a.log.Warn("admin api", "path", r.URL.Path, "err", err)
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		}
	})
}

// audit logs an operator action as one line and counts it, refused
// attempts too (their outcome is the reason). The line is at warn level,
// so that it is kept at any log level but error.
func (a *admin) audit(r *http.Request, action, target string, err error, attrs ...any) {
	a.actions.WithLabelValues(action).Inc()
	outcome := "ok"
	if err != nil {
		outcome = err.Error()
	}
	a.log.Warn("admin action", append([]any{"audit", true, "action", action, "target", target, "outcome", outcome,
		"remote", r.RemoteAddr}, attrs...)...)
}

// adminQueue is a queue as the admin API shows it: for a queue split into
// shards, depth and backlog are the shards' sums, leader and figures shard
// 0's, and shards lists each.
type adminQueue struct {
	Name            string              `json:"name"`
	MaxUsers        int                 `json:"maxUsers"`
	Depth           int64               `json:"depth"`
	EstimatedWaitMs *int64              `json:"estimatedWaitMs,omitempty"`
	Leader          string              `json:"leader"`
	Backlog         int64               `json:"allocationBacklog"`
	Figures         *matchmaker.Figures `json:"figures,omitempty"`
	Shards          []adminShard        `json:"shards,omitempty"`
}

// adminShard is one shard of a split queue.
type adminShard struct {
	Name    string              `json:"name"`
	Leader  string              `json:"leader"`
	Backlog int64               `json:"allocationBacklog"`
	Figures *matchmaker.Figures `json:"figures,omitempty"`
}

// adminShardReads bounds the shards GET /admin/api/queues reads at once.
const adminShardReads = 16

// shard reads one shard's leader, backlog and figures.
func (a *admin) shard(ctx context.Context, name string) (adminShard, error) {
	sh := adminShard{Name: name}
	var err error
	if sh.Leader, err = a.st.LeaseHolder(ctx, name); err != nil {
		return sh, err
	}
	if sh.Backlog, err = a.st.AllocationBacklog(ctx, name); err != nil {
		return sh, err
	}
	if f, err := a.mm.QueueFigures(ctx, name); err == nil {
		sh.Figures = &f
	} else if !errors.Is(err, domain.ErrNotFound) {
		return sh, err
	}
	return sh, nil
}

func (a *admin) getQueues(r *http.Request) (any, error) {
	status, err := a.mm.Status(r.Context())
	if err != nil {
		return nil, err
	}
	// Every shard of every queue is read at once: a shard is three round
	// trips, and a deployment may run dozens of shards.
	shards := map[string]*adminShard{}
	g, ctx := errgroup.WithContext(r.Context())
	g.SetLimit(adminShardReads)
	for _, q := range status {
		for _, name := range q.ShardNames() {
			sh := &adminShard{}
			shards[name] = sh
			g.Go(func() (err error) {
				*sh, err = a.shard(ctx, name)
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make([]adminQueue, 0, len(status))
	for _, q := range status {
		aq := adminQueue{Name: q.Name, MaxUsers: q.MaxUsers, Depth: q.Depth, EstimatedWaitMs: q.EstimatedWaitMs}
		for i, name := range q.ShardNames() {
			sh := *shards[name]
			aq.Backlog += sh.Backlog
			if i == 0 {
				aq.Leader, aq.Figures = sh.Leader, sh.Figures
			}
			if q.ShardCount() > 1 {
				aq.Shards = append(aq.Shards, sh)
			}
		}
		out = append(out, aq)
	}
	return map[string]any{"queues": out, "configVersion": a.qc.Version()}, nil
}

// reload reloads this node's queue file for every node; a file that does
// not validate gets 400 with the reason, and nothing changes.
func (a *admin) reload(r *http.Request) (any, error) {
	version, changed, err := a.qc.Reload(r.Context())
	a.audit(r, "reload_queues", a.cfg.ConfigFile, err, "version", version, "changed", changed)
	if errors.Is(err, errBadQueueFile) || errors.Is(err, errNoQueueFile) {
		return nil, badRequest(err.Error())
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"version": version, "changed": changed, "queues": a.mm.QueueNames()}, nil
}

// allQueues lists the queues in force and those removed whose matches may
// still be looked up.
func (a *admin) allQueues() []string {
	names := a.mm.QueueNames()
	for _, q := range a.qc.everConfigured() {
		if !slices.Contains(names, q) {
			names = append(names, q)
		}
	}
	return names
}

// adminNode is a node's heartbeat with what the console derives from it.
type adminNode struct {
	domain.NodeInfo
	// State is "up", "draining", "stopped" (shut down cleanly) or "gone"
	// (no heartbeat for nodeGoneAfter).
	State           string  `json:"state"`
	UptimeSeconds   float64 `json:"uptimeSeconds"`
	HeartbeatAgeSec float64 `json:"heartbeatAgeSeconds"`
	Self            bool    `json:"self"`
}

func (a *admin) nodes(ctx context.Context) ([]adminNode, error) {
	infos, now, err := a.st.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]adminNode, 0, len(infos))
	for _, n := range infos {
		an := adminNode{NodeInfo: n, Self: n.ID == a.cfg.NodeID, HeartbeatAgeSec: now.Sub(n.LastSeen).Seconds()}
		if an.Self && !n.Stopped {
			// The answering node's own figures are live, not as of its
			// last heartbeat.
			live := a.self()
			live.LastSeen = n.LastSeen
			an.NodeInfo = live
		}
		switch {
		case n.Stopped:
			an.State = "stopped"
		case now.Sub(n.LastSeen) > nodeGoneAfter:
			an.State = "gone"
		case n.Draining:
			an.State = "draining"
		default:
			an.State = "up"
		}
		if an.State == "up" || an.State == "draining" {
			an.UptimeSeconds = n.LastSeen.Sub(n.StartedAt).Seconds()
		}
		out = append(out, an)
	}
	return out, nil
}

func (a *admin) getNodes(r *http.Request) (any, error) {
	nodes, err := a.nodes(r.Context())
	if err != nil {
		return nil, err
	}
	return map[string]any{"nodes": nodes, "goneAfterSeconds": nodeGoneAfter.Seconds()}, nil
}

// adminMatch is a match as the admin API shows it.
type adminMatch struct {
	ID           string            `json:"matchId"`
	Queue        string            `json:"queue"`
	State        domain.MatchState `json:"state"`
	Players      []domain.Player   `json:"players"`
	Teams        [][]string        `json:"teams,omitempty"`
	Regions      []string          `json:"regions"`
	PartyID      string            `json:"partyId,omitempty"`
	InvitationID string            `json:"invitationId,omitempty"`
	Attempt      int               `json:"attempts"`
	CreatedAt    time.Time         `json:"createdAt"`
	AllocationMs *int64            `json:"allocationMs,omitempty"`
	FailReason   string            `json:"failReason,omitempty"`
	LastError    string            `json:"lastError,omitempty"`
	Left         []string          `json:"left,omitempty"`
	Quality      *domain.Quality   `json:"quality,omitempty"`
}

func matchOf(m domain.Match) adminMatch {
	am := adminMatch{ID: m.ID, Queue: m.Queue, State: m.State, Players: m.Players, Teams: m.Teams, Regions: m.Regions,
		PartyID: m.PartyID, InvitationID: m.InvitationID, Attempt: m.Attempt, CreatedAt: m.CreatedAt,
		FailReason: m.FailReason, LastError: m.LastError, Left: m.Left, Quality: m.Quality}
	if !m.ReadyAt.IsZero() {
		ms := m.ReadyAt.Sub(m.CreatedAt).Milliseconds()
		am.AllocationMs = &ms
	}
	return am
}

// getMatches lists the most recent matches (limit, default 50, at most
// 500), of one queue or of all, newest first.
func (a *admin) getMatches(r *http.Request) (any, error) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return nil, badRequest("limit must be 1 to 500")
		}
		limit = n
	}
	queues := a.allQueues()
	if q := r.URL.Query().Get("queue"); q != "" {
		// A queue's matches are in its shards, each a stream of its own.
		queues = slices.DeleteFunc(queues, func(name string) bool { return domain.BaseQueue(name) != q })
		if len(queues) == 0 {
			return nil, notFound("no such queue")
		}
	}
	var all []adminMatch
	for _, q := range queues {
		ms, err := a.st.RecentMatches(r.Context(), q, limit)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			all = append(all, matchOf(m))
		}
	}
	slices.SortStableFunc(all, func(x, y adminMatch) int { return y.CreatedAt.Compare(x.CreatedAt) })
	if len(all) > limit {
		all = all[:limit]
	}
	if all == nil {
		all = []adminMatch{}
	}
	return map[string]any{"matches": all}, nil
}

// findMatch looks for a match id in every queue.
func (a *admin) findMatch(ctx context.Context, id string) (domain.Match, error) {
	for _, q := range a.allQueues() {
		m, err := a.st.Match(ctx, q, id)
		if !errors.Is(err, domain.ErrNotFound) {
			return m, err
		}
	}
	return domain.Match{}, notFound("no such match (matches are kept for an hour)")
}

func (a *admin) getMatch(r *http.Request) (any, error) {
	m, err := a.findMatch(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return matchOf(m), nil
}

// getPlayFab sums every live node's PlayFab figures, and lists them per node.
func (a *admin) getPlayFab(r *http.Request) (any, error) {
	nodes, err := a.nodes(r.Context())
	if err != nil {
		return nil, err
	}
	type nodePlayFab struct {
		Node string `json:"node"`
		domain.PlayFabStats
	}
	var (
		calls, errs, throttles int64
		inFlight               int
		byError                = map[string]int64{}
		per                    = []nodePlayFab{}
	)
	for _, n := range nodes {
		if n.PlayFab == nil || n.State == "gone" || n.State == "stopped" {
			continue
		}
		per = append(per, nodePlayFab{n.ID, *n.PlayFab})
		inFlight += n.PlayFab.InFlight
		for _, outcomes := range n.PlayFab.Calls {
			for outcome, c := range outcomes {
				calls += c
				if outcome == "ok" {
					continue
				}
				errs += c
				byError[outcome] += c
				if partyalloc.IsThrottle(outcome) {
					throttles += c
				}
			}
		}
	}
	return map[string]any{"calls": calls, "errors": errs, "errorsByName": byError, "throttles": throttles,
		"inFlight": inFlight, "nodes": per}, nil
}

// getPlayer shows where a player is: the node holding their socket, their
// ticket, lobby and match: their ticket's, else their last one (whose
// match.ready waits for them, or was written to their socket).
func (a *admin) getPlayer(r *http.Request) (any, error) {
	ctx, id := r.Context(), r.PathValue("id")
	out := map[string]any{"playerId": id, "connected": false}
	p, found, err := a.st.PresenceOf(ctx, id)
	if err != nil {
		return nil, err
	}
	if found {
		out["connected"], out["node"] = true, p.NodeID
	}
	t, err := a.st.PlayerTicket(ctx, id)
	switch {
	case err == nil:
		out["ticket"] = t
		if t.MatchID != "" {
			if m, err := a.st.Match(ctx, t.Queue, t.MatchID); err == nil {
				out["match"] = matchOf(m)
			}
		}
	case !errors.Is(err, domain.ErrNotFound):
		return nil, err
	}
	if out["match"] == nil {
		// Once delivered, a match is no longer the ticket's: the claim on
		// the ticket was released.
		matchID, _, err := a.st.LastMatch(ctx, id)
		switch {
		case err == nil:
			if m, err := a.findMatch(ctx, matchID); err == nil {
				out["match"] = matchOf(m)
			}
		case !errors.Is(err, domain.ErrNotFound):
			return nil, err
		}
	}
	l, err := a.st.PlayerLobby(ctx, id)
	switch {
	case err == nil:
		out["lobby"] = l
	case !errors.Is(err, domain.ErrNotFound):
		return nil, err
	}
	return out, nil
}

// getLobby finds a lobby by id, or by join code.
func (a *admin) getLobby(r *http.Request) (any, error) {
	id := r.PathValue("id")
	l, err := a.st.Lobby(r.Context(), id)
	if errors.Is(err, domain.ErrNotFound) {
		l, err = a.st.LobbyByCode(r.Context(), strings.ToUpper(id))
	}
	if errors.Is(err, domain.ErrNotFound) {
		return nil, notFound("no lobby with that id or join code")
	}
	return l, err
}

func (a *admin) cancelTicket(r *http.Request) (any, error) {
	id := r.PathValue("id")
	t, err := a.gw.CancelTicket(r.Context(), id)
	a.audit(r, "cancel_ticket", id, err, "ticket", t.ID)
	if errors.Is(err, domain.ErrNotFound) {
		return nil, notFound("the player holds no ticket")
	}
	if errors.Is(err, domain.ErrConflict) {
		return nil, &apiError{http.StatusConflict, "the ticket's match is ready or failed: too late to cancel"}
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"cancelled": t.ID}, nil
}

func (a *admin) disconnect(r *http.Request) (any, error) {
	id := r.PathValue("id")
	ok, err := a.gw.DisconnectPlayer(r.Context(), id)
	if err == nil && !ok {
		err = notFound("the player is not connected")
	}
	a.audit(r, "disconnect", id, err)
	if err != nil {
		return nil, err
	}
	return map[string]any{"disconnected": id}, nil
}

func (a *admin) kick(r *http.Request) (any, error) {
	var body struct {
		PlayerID string `json:"playerId"`
	}
	lobbyID := r.PathValue("id")
	var err error
	if derr := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 4096)).Decode(&body); derr != nil || body.PlayerID == "" {
		err = badRequest(`body must be {"playerId": "..."}`)
	} else {
		err = a.gw.KickFromLobby(r.Context(), lobbyID, body.PlayerID)
	}
	a.audit(r, "kick", lobbyID, err, "player", body.PlayerID)
	if errors.Is(err, domain.ErrNotFound) {
		return nil, notFound("no such lobby, or the player is not in it")
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"kicked": body.PlayerID}, nil
}

func (a *admin) closeLobby(r *http.Request) (any, error) {
	id := r.PathValue("id")
	err := a.gw.CloseLobby(r.Context(), id)
	a.audit(r, "close_lobby", id, err)
	if errors.Is(err, domain.ErrNotFound) {
		return nil, notFound("no such lobby")
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"closed": id}, nil
}

// drain drains a node; the optional query parameter period (a Go duration,
// 1s to 1h) overrides the node's LOBBYD_DRAIN_PERIOD.
func (a *admin) drain(r *http.Request) (any, error) {
	id, period := r.PathValue("id"), r.URL.Query().Get("period")
	err := a.drainNode(r.Context(), id, period)
	a.audit(r, "drain", id, err, "period", cmp.Or(period, "default"))
	if err != nil {
		return nil, err
	}
	return map[string]any{"draining": id}, nil
}

// drainNode drains the live node id over period ("" for the node's own).
func (a *admin) drainNode(ctx context.Context, id, period string) error {
	var d time.Duration
	if period != "" {
		var err error
		d, err = time.ParseDuration(period)
		if err != nil || d < time.Second || d > time.Hour {
			return badRequest("period must be a duration from 1s to 1h, like 30s")
		}
	}
	nodes, err := a.nodes(ctx)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(nodes, func(n adminNode) bool { return n.ID == id && (n.State == "up" || n.State == "draining") }) {
		return notFound("no such live node")
	}
	return a.gw.DrainNode(ctx, id, d)
}

// nodeInfo returns a func giving this node's figures as its heartbeat
// carries them (LastSeen is set when stored).
func nodeInfo(cfg config, gw *lobby.Gateway, mm *matchmaker.Service, playfab *partyalloc.PlayFabClient, stats *partyalloc.CallStats) func() domain.NodeInfo {
	started := time.Now().UTC()
	return func() domain.NodeInfo {
		h := playfab.Health()
		led := mm.Leading()
		if led == nil {
			led = []string{}
		}
		return domain.NodeInfo{ID: cfg.NodeID, Version: version(), StartedAt: started,
			Connections: gw.Connections(), QueuesLed: led, Draining: gw.Draining(),
			PlayFab: &domain.PlayFabStats{Calls: stats.Outcomes(), InFlight: h.InFlight,
				TokenAgeSeconds: h.TokenAge.Seconds(), TokenExpiresInSeconds: h.TokenExpiresIn.Seconds()}}
	}
}

// heartbeat writes this node's heartbeat every heartbeatEvery and the
// allocation backlog gauges, until ctx is done; then a last one saying the
// node stopped.
func heartbeat(ctx context.Context, st *store.Store, info func() domain.NodeInfo, queues func() []string,
	backlog *prometheus.GaugeVec, log *slog.Logger) error {
	beat := func(ctx context.Context, stopped bool) {
		n := info()
		n.Stopped = stopped
		if err := st.Heartbeat(ctx, n); err != nil && ctx.Err() == nil {
			log.Warn("write heartbeat", "err", err)
		}
		if stopped {
			return
		}
		for _, q := range queues() {
			if n, err := st.AllocationBacklog(ctx, q); err == nil {
				backlog.WithLabelValues(q).Set(float64(n))
			}
		}
	}
	tick := time.NewTicker(heartbeatEvery)
	defer tick.Stop()
	for beats := 0; ; beats++ {
		beat(ctx, false)
		if beats%pruneEvery == 0 {
			// Listing prunes the nodes that stopped long ago (a restarted
			// node with a generated id is a new entry).
			if _, _, err := st.Nodes(ctx); err != nil && ctx.Err() == nil {
				log.Debug("prune old heartbeats", "err", err)
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			beat(last, true)
			cancel()
			return nil
		}
	}
}

// version is the build's module version and VCS revision, as far as the
// binary knows them ("devel" for go run).
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v += " " + s.Value[:min(12, len(s.Value))]
		case "vcs.modified":
			if s.Value == "true" {
				v += "+dirty"
			}
		}
	}
	return cmp.Or(strings.TrimSpace(v), "devel")
}
