package lobby

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/alicebob/miniredis/v2"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/lobbyd/lobbyd/matchmaker"
	"github.com/lobbyd/lobbyd/store"
)

// FuzzFrame feeds arbitrary bytes to a session as one client text frame,
// through takeFrame as the read loop does, with the player in one of a
// few states (see frameScenarios), and checks what the socket would get:
// exactly one reply (or a close), first, valid JSON with a documented error
// code that the frame itself explains, the request's id echoed, and only
// documented events after it.
func FuzzFrame(f *testing.F) {
	for _, frame := range frameSeeds {
		for sc := range frameScenarios {
			f.Add(uint8(sc), []byte(frame))
		}
	}
	fx := newFrameFixture(f)
	f.Fuzz(func(t *testing.T, scenario uint8, frame []byte) {
		sc := frameScenarios[int(scenario)%len(frameScenarios)]
		fx.reset(t, sc)
		s := fx.g.newSession(nil, Identity{PlayerID: fuzzPlayer, Name: "Fuzz", Expires: time.Now().Add(time.Hour)}, &playerBudget{}, func() {})
		s.startWriter = func(bool) {} // no socket: frames stay queued for checkAnswer
		defer s.cancel()
		s.takeFrame(frame)
		checkAnswer(t, frame, s)
	})
}

const fuzzPlayer = "p"

// frameSeeds holds a valid frame of every request in docs/protocol.md, and
// malformed ones.
var frameSeeds = []string{
	`{"type":"ping","id":"1"}`,
	`{"type":"lobby.create","id":"2","queue":"default","visibility":"private","maxMembers":2,"props":{"map":"dust"},"skill":1200}`,
	`{"type":"lobby.join","id":"3","lobbyId":"open-lobby","skill":900}`,
	`{"type":"lobby.join","id":"3","code":"k7qf2m"}`,
	`{"type":"lobby.leave","id":"4"}`,
	`{"type":"lobby.list","id":"5","queue":"default","limit":10}`,
	`{"type":"lobby.update","id":"6","props":{"mode":"ctf"},"visibility":"public","maxMembers":3}`,
	`{"type":"lobby.kick","id":"7","playerId":"mate"}`,
	`{"type":"lobby.promote","id":"8","playerId":"mate"}`,
	`{"type":"lobby.ready","id":"9","ready":true,"skill":1500}`,
	`{"type":"lobby.chat","id":"10","text":"gl hf"}`,
	`{"type":"queue.join","id":"11","queue":"duel","skill":1000,"regions":["NorthEurope","WestUs"]}`,
	`{"type":"queue.join","id":"11","queue":"duel","latencies":{"WestUs":80,"NorthEurope":30.5}}`,
	`{"type":"queue.leave","id":"12"}`,
	`{"type":"queue.join","id":"13","queue":"duel","attributes":{"mode":"ctf","maps":["dust","harbor"]}}`,
	`{"type":"queue.why","id":"15"}`,
	// Malformed.
	``,
	`not json`,
	`{"type":"ping"`,
	`[]`,
	`null`,
	`"ping"`,
	`{}`,
	`{"type":""}`,
	`{"type":"ping","id":7}`,
	`{"type":"ping","id":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`,
	`{"type":"no.such.type","id":"14"}`,
	`{"type":"queue.join","queue":"default","skill":"high"}`,
	`{"type":"queue.join","queue":"default","latencies":{"WestUs":-1}}`,
	`{"type":"queue.join","queue":"duel","attributes":{"mode":null,"maps":[1],"level":"x"}}`,
	`{"type":"queue.join","queue":"duel","attributes":{"maps":["a","a","a"],"tier":"gold"}}`,
	`{"type":"queue.join","queue":"duel","attributes":[]}`,
	`{"type":"lobby.create","queue":"default","props":{"":"x"}}`,
	`{"type":"lobby.update","props":{}}`,
	`{"type":"lobby.ready"}`,
	`{"type":"lobby.chat","text":""}`,
	`{"type":"lobby.list","limit":-1}`,
	`{"type":"ping","id":"1"} {"type":"ping"}`,
}

// frameScenario is the state the player is in when the frame arrives.
type frameScenario struct {
	name  string
	setup func(ctx context.Context, fx *frameFixture) error
}

// frameScenarios: every scenario also has an open public lobby,
// "open-lobby", owned by "other", in the default queue.
var frameScenarios = []frameScenario{
	{"alone", func(context.Context, *frameFixture) error { return nil }},
	{"owns a lobby", func(ctx context.Context, fx *frameFixture) error {
		return fx.ownLobby(ctx, false)
	}},
	{"member of a lobby", func(ctx context.Context, fx *frameFixture) error {
		_, err := fx.st.JoinLobby(ctx, "open-lobby", domain.LobbyMember{PlayerID: fuzzPlayer, Name: "Fuzz"})
		return err
	}},
	{"queued alone", func(ctx context.Context, fx *frameFixture) error {
		_, err := fx.g.Queues.Join(ctx, domain.Ticket{Queue: "default", Players: []domain.Player{{ID: fuzzPlayer, Name: "Fuzz"}}})
		return err
	}},
	{"owns a queued lobby", func(ctx context.Context, fx *frameFixture) error {
		return fx.ownLobby(ctx, true)
	}},
}

// frameFixture is a gateway on a miniredis that each fuzz input starts
// from empty.
type frameFixture struct {
	redis *miniredis.Miniredis
	st    *store.Store
	g     *Gateway
}

func newFrameFixture(f *testing.F) *frameFixture {
	m, err := miniredis.Run()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(m.Close)
	st, err := store.Open(context.Background(), store.Config{URL: "redis://" + m.Addr()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	duel := matchmaker.Queue{Name: "duel", MaxUsers: 2, Regions: []string{"WestUs", "NorthEurope"},
		MaxLatencyMs: 120,
		Skill:        matchmaker.SkillRule{InitialWindow: 100, WidenPerSecond: 10, MaxWindow: 400},
		Attributes: []matchmaker.Attribute{
			{Name: "mode", Type: domain.AttrString, Rule: matchmaker.RuleEqual, Values: []string{"ctf", "tdm"}},
			{Name: "maps", Type: domain.AttrStrings, Rule: matchmaker.RuleIntersect},
			{Name: "level", Type: domain.AttrNumber, Rule: matchmaker.RuleDistance, MaxDistance: 5},
			{Name: "tier", Type: domain.AttrString, Rule: matchmaker.RuleEqual, Source: matchmaker.SourceToken},
		}}
	duel.ApplyDefaults()
	logger := slog.New(slog.DiscardHandler)
	g := &Gateway{Store: st, NodeID: "fuzz-node", Logger: logger, Auth: &Authenticator{Secret: []byte("fuzz")},
		Queues: &matchmaker.Service{Store: st, Queues: append(matchmaker.DefaultQueues(), duel), NodeID: "fuzz-node", Logger: logger}}
	g.init()
	// The pacer of lobby.state runs as in Run: without it, a request that
	// changes a lobby would wait its whole timeout for an admission.
	ctx, stop := context.WithCancel(context.Background())
	go g.states.run(ctx, g.RequestTimeout)
	f.Cleanup(func() { stop(); <-g.states.done })
	return &frameFixture{redis: m, st: st, g: g}
}

// reset empties Redis and puts the player in scenario sc.
func (fx *frameFixture) reset(t *testing.T, sc frameScenario) {
	t.Helper()
	fx.redis.FlushAll()
	ctx := context.Background()
	_, err := fx.st.CreateLobby(ctx, domain.Lobby{ID: "open-lobby", Queue: "default", Visibility: "public",
		OwnerID: "other", MaxMembers: 4, Status: domain.LobbyOpen, CreatedAt: time.Now().UnixMilli(),
		Members: []domain.LobbyMember{{PlayerID: "other", Name: "Other"}}})
	if err == nil {
		err = sc.setup(ctx, fx)
	}
	if err != nil {
		t.Fatalf("scenario %q: %v", sc.name, err)
	}
}

// ownLobby makes the player the owner of "p-lobby" with "mate" in it, and
// with queued, both ready and the lobby queued in the default queue.
func (fx *frameFixture) ownLobby(ctx context.Context, queued bool) error {
	l, err := fx.st.CreateLobby(ctx, domain.Lobby{ID: "p-lobby", Queue: "default", Visibility: "private",
		OwnerID: fuzzPlayer, MaxMembers: 4, Status: domain.LobbyOpen, CreatedAt: time.Now().UnixMilli(),
		Members: []domain.LobbyMember{{PlayerID: fuzzPlayer, Name: "Fuzz"}}})
	if err != nil {
		return err
	}
	if l, err = fx.st.JoinLobby(ctx, l.ID, domain.LobbyMember{PlayerID: "mate", Name: "Mate"}); err != nil || !queued {
		return err
	}
	for _, p := range l.MemberIDs() {
		if _, err := fx.st.SetReady(ctx, l.ID, p, true, nil); err != nil {
			return err
		}
	}
	t, err := fx.g.Queues.Join(ctx, domain.Ticket{Queue: "default", LobbyID: l.ID,
		Players: []domain.Player{{ID: fuzzPlayer, Name: "Fuzz"}, {ID: "mate", Name: "Mate"}}})
	if err != nil {
		return err
	}
	_, err = fx.st.AttachLobbyTicket(ctx, l.ID, fuzzPlayer, t.ID, l.MemberIDs())
	return err
}

// Protocol vocabulary, from docs/protocol.md rather than from the code
// under test.
var (
	protocolRequests = []string{"ping", "lobby.create", "lobby.join", "lobby.leave", "lobby.list",
		"lobby.update", "lobby.kick", "lobby.promote", "lobby.ready", "lobby.chat", "queue.join", "queue.leave", "queue.why"}
	protocolEvents = []string{"queue.state", "match.found", "match.ready", "match.failed", "session.replaced",
		"lobby.state", "lobby.chat", "lobby.removed"}
	protocolCodes = []string{CodeBadRequest, CodeUnknownType, CodeUnauthorized, CodeForbidden, CodeNotFound,
		CodeConflict, CodeFull, CodeRateLimited, CodeTooLarge, CodeUnavailable, CodeInternal}
	protocolCloseCodes = []int{closeUnsupported, closeInvalidData, closePolicy, closeTooBig}
	// replyDataKey is the member a successful reply's data must have ("":
	// data is {}).
	replyDataKey = map[string]string{"ping": "serverTime", "lobby.create": "lobby", "lobby.join": "lobby",
		"lobby.update": "lobby", "lobby.list": "lobbies", "queue.join": "ticket"}
)

// expectedReply is what docs/protocol.md says a frame gets: the error code
// it must get (any code but a server-side failure when ""), and the id the
// reply must carry.
type expectedReply struct {
	code string
	id   string
	typ  string // the request type, when the frame names a known one
}

// expectReply reads the frame the way the protocol describes it (encoding/
// json's rules for objects: keys match case-insensitively, the last one
// wins) and says what its reply must be.
func expectReply(frame []byte) expectedReply {
	var obj map[string]any
	if err := json.Unmarshal(frame, &obj); err != nil || obj == nil {
		return expectedReply{code: CodeBadRequest} // not a JSON object
	}
	var env struct {
		Type any `json:"type"`
		ID   any `json:"id"`
	}
	if err := json.Unmarshal(frame, &env); err != nil {
		panic(fmt.Sprintf("an object did not decode into the envelope: %v", err))
	}
	var want expectedReply
	switch id := env.ID.(type) {
	case nil:
	case string:
		if utf8.RuneCountInString(id) > 64 {
			return expectedReply{code: CodeBadRequest}
		}
		want.id = id
	default:
		return expectedReply{code: CodeBadRequest}
	}
	typ, _ := env.Type.(string)
	switch {
	case typ == "":
		want.code = CodeBadRequest
	case !slices.Contains(protocolRequests, typ):
		want.code = CodeUnknownType
	default:
		want.typ = typ
	}
	return want
}

// checkAnswer drains what handleFrame queued for the socket and checks it
// against the frame.
func checkAnswer(t *testing.T, frame []byte, s *session) {
	t.Helper()
	var out []map[string]any
	s.wmu.Lock()
	queued := s.queue
	s.wmu.Unlock()
	for _, o := range queued {
		var m map[string]any
		if err := json.Unmarshal(o.frame, &m); err != nil || m == nil {
			t.Fatalf("server frame is not a JSON object: %q", o.frame)
		}
		out = append(out, m)
	}
	closed := false
	select {
	case <-s.closing:
		closed = true
		if !slices.Contains(protocolCloseCodes, s.closeCode) {
			t.Fatalf("closed with %d (%q), not a close code a frame may cause", s.closeCode, s.closeText)
		}
	default:
	}
	replies := 0
	for i, m := range out {
		if m["type"] == "reply" {
			replies++
			if i != 0 {
				t.Fatalf("the reply is frame %d: events a request causes follow its reply: %v", i, out)
			}
			continue
		}
		typ, _ := m["type"].(string)
		if !slices.Contains(protocolEvents, typ) {
			t.Fatalf("server sent an undocumented frame: %v", m)
		}
		if _, ok := m["id"]; ok {
			t.Fatalf("an event carries an id: %v", m)
		}
	}
	if replies > 1 || (replies == 0 && !closed) {
		t.Fatalf("%d replies to one request (closed: %v): %v", replies, closed, out)
	}
	if replies == 0 {
		return
	}
	checkReply(t, frame, out[0])
}

func checkReply(t *testing.T, frame []byte, r map[string]any) {
	t.Helper()
	want := expectReply(frame)
	gotID, hasID := r["id"]
	switch {
	case want.id == "" && hasID:
		t.Fatalf("reply carries id %v, the request had none that is valid: %v", gotID, r)
	case want.id != "" && gotID != want.id:
		t.Fatalf("reply id %q, want the request's %q: %v", gotID, want.id, r)
	}
	ok, isBool := r["ok"].(bool)
	if !isBool {
		t.Fatalf("reply without a boolean ok: %v", r)
	}
	if ok {
		if want.code != "" {
			t.Fatalf("reply ok, want %s: %v", want.code, r)
		}
		data, isObj := r["data"].(map[string]any)
		if !isObj || r["error"] != nil {
			t.Fatalf("success without a data object, or with an error: %v", r)
		}
		key := replyDataKey[want.typ]
		if key == "" && len(data) != 0 {
			t.Fatalf("%s replies {}, got %v", want.typ, data)
		}
		if key != "" && data[key] == nil {
			t.Fatalf("%s's reply data lacks %q: %v", want.typ, key, data)
		}
		return
	}
	e, isObj := r["error"].(map[string]any)
	if !isObj || r["data"] != nil {
		t.Fatalf("failure without an error object, or with data: %v", r)
	}
	code, _ := e["code"].(string)
	if msg, _ := e["message"].(string); msg == "" {
		t.Fatalf("error without a message: %v", r)
	}
	switch {
	case !slices.Contains(protocolCodes, code):
		t.Fatalf("undocumented error code %q: %v", code, r)
	case want.code != "" && code != want.code:
		t.Fatalf("error %q, want %q: %v", code, want.code, r)
	case want.typ == "queue.why" && code == CodeUnavailable:
		// No formation loop runs here, so no leader has written the
		// summary queue.why answers from: unavailable is what the
		// protocol says then.
	case want.code == "" && (code == CodeInternal || code == CodeUnavailable || code == CodeUnknownType):
		// Redis is healthy: only the frame can explain a failure.
		t.Fatalf("a %s request got %q: %v", want.typ, code, r)
	}
}
