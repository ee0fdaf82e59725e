package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
)

var t0 = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// world fabricates a clean run: four players, each playing the given
// matches in order (one round each), every match delivered live once, one
// successful call per match at the fake, and a clean keyspace.
func world(matches ...string) evidence {
	ev := evidence{MatchSize: 4, Grace: 5 * time.Second, FakeParties: map[string]fakeParty{},
		Fake: fakeplayfab.Stats{Successes: map[string]int{}, DroppedByParty: map[string]int{}}}
	ids := []string{"p1", "p2", "p3", "p4"}
	for _, id := range ids {
		ev.Players = append(ev.Players, &playerRecord{ID: id, Connections: 1, Errors: map[string]int{}})
	}
	for i, m := range matches {
		for _, p := range ev.Players {
			p.Rounds = append(p.Rounds, roundRecord{N: i + 1, TicketID: "t-" + p.ID + m, JoinedAt: at(float64(10 * i)),
				FoundIDs: []string{m}, MatchID: m, ReadyAt: at(float64(10*i + 1))})
			p.Deliveries = append(p.Deliveries, delivery{MatchID: m, PartyID: m, InvitationID: "inv-" + m, Descriptor: "d-" + m,
				Players: ids, Via: viaLive, Conn: 1, Round: i + 1, At: at(float64(10*i + 1))})
		}
		ev.Fake.Successes[m] = 1
		fp := fakeParty{}
		fp.Request.NetworkConfiguration.MaxUsers = 4
		ev.FakeParties[m] = fp
	}
	ev.Keys = []keyInfo{
		{Key: "{q:default}:t:abc", Type: "hash", TTL: time.Hour},
		{Key: "{q:default}:m:abc", Type: "hash", TTL: 50 * time.Minute},
		{Key: "{q:default}:alloc", Type: "stream", TTL: -1, Len: 3},
		{Key: "{q:default}:stats", Type: "hash", TTL: -1},
		{Key: "{q:default}:lease", Type: "string", TTL: 4 * time.Second},
		{Key: "{p:p1}:node", Type: "string", TTL: 30 * time.Second},
	}
	return ev
}

func invariants(v verdict) []string {
	var out []string
	for _, f := range v.Violations {
		out = append(out, f.Invariant)
	}
	return out
}

func TestCheckCleanRunPasses(t *testing.T) {
	v := check(world("m1", "m2"))
	assert.Empty(t, v.Violations)
	assert.Len(t, v.Matches, 2)
}

// Each case breaks one invariant in an otherwise clean run; the checker
// must name exactly that one.
func TestCheckFindsEachBrokenInvariant(t *testing.T) {
	cases := []struct {
		name    string
		breakIt func(ev *evidence)
		want    []string
	}{
		{"a second successful call for one match", func(ev *evidence) {
			ev.Fake.Successes["m1"] = 2
		}, []string{invSecondParty}},
		{"a second successful call with a node killed only after the match was ready", func(ev *evidence) {
			ev.Fake.Successes["m1"] = 2
			ev.Kills = []time.Time{at(5)}
		}, []string{invSecondParty}},
		{"a third successful call with one node killed while allocating", func(ev *evidence) {
			ev.Fake.Successes["m1"] = 3
			ev.Kills = []time.Time{at(0.5)}
		}, []string{invSecondParty}},
		{"matches of three players", func(ev *evidence) {
			ev.Players = ev.Players[:3]
			for _, p := range ev.Players {
				p.Deliveries[0].Players = []string{"p1", "p2", "p3"}
				p.Deliveries[1].Players = []string{"p1", "p2", "p3"}
			}
		}, []string{invMatchSize, invMatchSize}},
		{"the fake was asked for another MaxUsers", func(ev *evidence) {
			fp := ev.FakeParties["m2"]
			fp.Request.NetworkConfiguration.MaxUsers = 5
			ev.FakeParties["m2"] = fp
		}, []string{invMatchSize}},
		{"an earlier round's match after a later one", func(ev *evidence) {
			p := ev.Players[0]
			p.Connections = 2
			p.Deliveries = append(p.Deliveries, delivery{MatchID: "m1", PartyID: "m1", InvitationID: "inv-m1", Descriptor: "d-m1",
				Players: p.Deliveries[0].Players, Via: viaWelcome, Conn: 2, Round: 1, At: at(30)})
		}, []string{invStale}},
		{"the same match twice on one connection", func(ev *evidence) {
			p := ev.Players[0]
			p.Deliveries = append(p.Deliveries[:1], p.Deliveries[0], p.Deliveries[1])
		}, []string{invDuplicate}},
		{"a member who never got the match", func(ev *evidence) {
			ev.Players[3].Deliveries = ev.Players[3].Deliveries[:1]
			ev.Players[3].Rounds[1].MatchID = ""
			ev.Players[3].End = endAllocating
		}, []string{invLostPlayer, invLostPlayer}},
		{"a ticket gone after a short disconnect", func(ev *evidence) {
			ev.Players[1].Ended = []endedTicket{{TicketID: "t", At: at(5), Why: "vanished", Disconnected: time.Second}}
		}, []string{invLostTicket}},
		{"a match.ready for no ticket of the player's", func(ev *evidence) {
			p := ev.Players[2]
			p.Deliveries = append(p.Deliveries, delivery{MatchID: "m9", Players: []string{"p3"}, Via: viaLive, Conn: 1, At: at(40)})
		}, []string{invTwoMatches, invMatchSize, invNoParty}},
		{"members disagree on the party", func(ev *evidence) {
			ev.Players[2].Deliveries[0].InvitationID = "other"
		}, []string{invDisagree}},
		{"the invitation names other players", func(ev *evidence) {
			fp := ev.FakeParties["m1"]
			fp.Request.NetworkConfiguration.PartyInvitationConfiguration = &struct {
				EntityKeys []struct {
					ID string `json:"Id"`
				} `json:"EntityKeys"`
			}{EntityKeys: []struct {
				ID string `json:"Id"`
			}{{"p1"}, {"p2"}, {"p3"}, {"p9"}}}
			ev.FakeParties["m1"] = fp
		}, []string{invTwoMatches}},
		{"a whole match's worth of players left searching", func(ev *evidence) {
			for _, p := range ev.Players {
				p.End = endSearching
			}
		}, []string{invLostPlayer}},
		{"a ticket without a TTL", func(ev *evidence) {
			ev.Keys = append(ev.Keys, keyInfo{Key: "{q:default}:t:zzz", Type: "hash", TTL: -1})
		}, []string{invLeakedKey}},
		{"a match with a TTL above the documented hour", func(ev *evidence) {
			ev.Keys = append(ev.Keys, keyInfo{Key: "{q:default}:m:zzz", Type: "hash", TTL: 3 * time.Hour})
		}, []string{invLeakedKey}},
		{"a ticket still searching after everyone left", func(ev *evidence) {
			ev.Keys = append(ev.Keys, keyInfo{Key: "{q:default}:searching", Type: "zset", TTL: -1, Len: 1})
		}, []string{invLeakedKey}},
		{"a grace deadline left in a bucket after everyone left", func(ev *evidence) {
			ev.Keys = append(ev.Keys, keyInfo{Key: "lobbyd:graces:{g:07}", Type: "zset", TTL: -1, Len: 1})
		}, []string{invLeakedKey}},
		{"a grace deadline left in the legacy set", func(ev *evidence) {
			ev.Keys = append(ev.Keys, keyInfo{Key: "lobbyd:graces", Type: "zset", TTL: -1, Len: 1})
		}, []string{invLeakedKey}},
		{"a key the docs do not name", func(ev *evidence) {
			ev.Keys = append(ev.Keys, keyInfo{Key: "lobbyd:debug", Type: "string", TTL: -1})
		}, []string{invLeakedKey}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := world("m1", "m2")
			tc.breakIt(&ev)
			assert.ElementsMatch(t, tc.want, invariants(check(ev)))
		})
	}
}

// What the protocol allows is counted, never failed.
func TestCheckAllowsWhatTheProtocolAllows(t *testing.T) {
	cases := []struct {
		name  string
		allow func(ev *evidence)
		note  string
	}{
		{"a second party after a dropped reply", func(ev *evidence) {
			ev.Fake.Successes["m1"] = 2
			ev.Fake.DroppedByParty["m1"] = 1
		}, noteRetryAfterDrop},
		{"a second party after a node was killed while the match was allocating", func(ev *evidence) {
			ev.Fake.Successes["m1"] = 2
			ev.Kills = []time.Time{at(0.5)}
		}, noteRetryAfterKill},
		{"the latest match again on a new connection", func(ev *evidence) {
			p := ev.Players[0]
			p.Connections = 2
			p.Deliveries = append(p.Deliveries, delivery{MatchID: "m2", PartyID: "m2", InvitationID: "inv-m2", Descriptor: "d-m2",
				Players: p.Deliveries[1].Players, Via: viaWelcome, Conn: 2, Round: 2, At: at(15)})
		}, noteRepeatOnNewConn},
		{"a ticket cancelled after a disconnect past the grace", func(ev *evidence) {
			ev.Players[1].Ended = []endedTicket{{TicketID: "t", At: at(5), Why: "vanished", Disconnected: 9 * time.Second}}
		}, noteGraceCancelled},
		{"fewer than a match left searching", func(ev *evidence) {
			ev.Players[0].End = endSearching
			ev.Players[1].End = endSearching
		}, noteRemainder},
		{"a party for a match that failed", func(ev *evidence) {
			ev.Fake.Successes["m-failed"] = 1
		}, noteOrphan},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := world("m1", "m2")
			tc.allow(&ev)
			v := check(ev)
			assert.Empty(t, v.Violations)
			assert.Positive(t, v.Notes[tc.note])
		})
	}
}
