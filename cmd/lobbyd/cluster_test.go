package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/lobby/lobbytest"
	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
	"github.com/lobbyd/lobbyd/store/storetest"
)

// TestOnRedisCluster: three lobbyd nodes on a Redis Cluster of three
// primaries (redis+cluster://), sharing a JWT secret and one fake PlayFab.
// A lobby with a member on each node queues, one member drops, and a solo
// fills the match; 24 solos spread over the nodes fill six more. Every
// player gets exactly one match.ready (the dropped member in welcome, on
// another node), a match's members agree on its party, and each match made
// one RequestPartyService call. A player moved to another node while
// searching is welcomed there with their ticket.
func TestOnRedisCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := storetest.StartCluster(t, 3, 0)
	fake := fakeplayfab.New(fakeplayfab.Config{TitleID: "E2E", SecretKey: "e2e-title-secret", Logger: quietFake})
	env := map[string]string{
		"LOBBYD_REDIS_URL": c.URL, "LOBBYD_DEV_AUTH": "true",
		"LOBBYD_JWT_SECRET":       "cluster-e2e-secret-shared-by-every-node",
		"LOBBYD_PLAYFAB_TITLE_ID": "E2E", "LOBBYD_PLAYFAB_SECRET_KEY": "e2e-title-secret",
		"LOBBYD_PLAYFAB_BASE_URL": newFakeServer(t, fake),
	}
	nodes := []*server{startServer(t, env), startServer(t, env), startServer(t, env)}
	t.Logf("cluster and 3 nodes up in %v", time.Since(start).Round(time.Millisecond))

	type ready struct{ match, party, invitation, descriptor string }
	readyOf := func(f lobbytest.Frame) ready {
		return ready{f.Str("matchId"), f.Str("partyId"), f.Str("invitationId"), f.Str("networkDescriptor")}
	}
	got := map[string]ready{} // by player name
	nodeOf := map[string]int{}

	// A lobby with a member on each node queues (3 of 4: it waits).
	owner, a := nodes[0].player(t, "owner"), nodes[1].player(t, "member-a")
	bToken, bID := nodes[2].devToken(t, "member-b", "")
	bClient, firstWelcome := nodes[2].connect(t, bToken)
	b := &player{Client: bClient, id: bID, name: "member-b", token: bToken}
	nodeOf["owner"], nodeOf["member-a"], nodeOf["member-b"] = 0, 1, 2
	code := owner.ok(t, "lobby.create", map[string]any{"queue": "default"}).Obj("lobby").Str("code")
	a.ok(t, "lobby.join", map[string]any{"code": code})
	b.ok(t, "lobby.join", map[string]any{"code": code})
	for _, p := range []*player{owner, a, b} {
		p.ok(t, "lobby.ready", map[string]any{"ready": true})
	}
	ticket := owner.ok(t, "queue.join", map[string]any{"queue": "default"}).Obj("ticket")
	assert.Len(t, ticket["players"], 3, "one ticket for the lobby, whose members are on three nodes")

	// Member b drops; the others see it on their nodes.
	b.Conn.Close()
	storetest.Eventually(t, 10*time.Second, func() bool { return memberField(owner.state(t), b.id, "connected") == false },
		"the owner sees member-b disconnected")

	// A solo on node 1 fills the lobby's match while b is away.
	filler := nodes[1].player(t, "filler")
	nodeOf["filler"] = 1
	filler.ok(t, "queue.join", map[string]any{"queue": "default"})
	for _, p := range []*player{owner, a, filler} {
		got[p.name] = readyOf(p.Next("match.ready"))
	}
	storetest.Eventually(t, 10*time.Second, func() bool { return owner.state(t).Str("status") == "matched" },
		"the lobby is marked matched")

	// b comes back on node 0: the match formed while away is in welcome.
	back, welcome := nodes[0].connect(t, b.token)
	assert.NotEqual(t, firstWelcome.Str("node"), welcome.Str("node"), "welcomed by another node")
	state := welcome.Obj("state")
	got["member-b"] = readyOf(state.Obj("match"))
	nodeOf["member-b"] = 0
	assert.Equal(t, code, state.Obj("lobby").Str("code"), "the lobby place is kept")
	assert.Equal(t, "matched", state.Obj("lobby").Str("status"))
	back.Request("ping", nil)
	assert.Zero(t, back.Count("match.ready"), "a match.ready in welcome is not sent again")

	// 24 solos, round robin over the nodes, make six matches.
	solos := make([]*player, 24)
	for i := range solos {
		name := fmt.Sprintf("solo%02d", i)
		solos[i] = nodes[i%3].player(t, name)
		nodeOf[name] = i % 3
	}
	for _, p := range solos {
		p.ok(t, "queue.join", map[string]any{"queue": "default"})
	}
	for _, p := range solos {
		got[p.name] = readyOf(p.Next("match.ready"))
	}
	// A ping's reply comes after every frame queued before it: a duplicate
	// match.ready already sent would now be in the backlog.
	for _, p := range append([]*player{owner, a, filler}, solos...) {
		p.Request("ping", nil)
		assert.Zero(t, p.Count("match.ready"), "exactly one match.ready for %s", p.name)
	}

	byMatch := map[string]map[string]ready{}
	for name, r := range got {
		require.NotEmpty(t, r.match, "%s has a match", name)
		if byMatch[r.match] == nil {
			byMatch[r.match] = map[string]ready{}
		}
		byMatch[r.match][name] = r
	}
	require.Len(t, byMatch, 7, "28 players, 4 per match")
	spanning := 0
	for id, members := range byMatch {
		require.Len(t, members, 4, "match %s", id)
		var first ready
		onNode := map[int]bool{}
		for name, r := range members {
			if first.match == "" {
				first = r
			}
			assert.Equal(t, first, r, "members of %s agree on party, invitation and descriptor", id)
			onNode[nodeOf[name]] = true
		}
		assert.Equal(t, id, first.party, "PartyId is the match id")
		info, err := fakeplayfab.DecodeDescriptor(first.descriptor)
		require.NoError(t, err)
		assert.Equal(t, id, info.PartyID, "the descriptor is the one PlayFab made for this party")
		if len(onNode) > 1 {
			spanning++
		}
	}
	assert.Equal(t, got["owner"], got["member-b"], "the lobby's members are in one match")
	assert.Equal(t, got["owner"], got["filler"])
	assert.Positive(t, spanning, "matches span nodes")
	stats := fake.Stats()
	assert.Equal(t, 7, stats.RequestPartyService, "one RequestPartyService per match")
	for id, n := range stats.Parties {
		assert.Equal(t, 1, n, "party %s requested once", id)
		assert.Contains(t, byMatch, id, "party %s was delivered", id)
	}

	// A lone solo searching on node 2 moves to node 1: welcomed with the ticket.
	lone := nodes[2].player(t, "lone")
	joined := lone.ok(t, "queue.join", map[string]any{"queue": "default"}).Obj("ticket")
	lone.Conn.Close()
	moved, welcome := nodes[1].connect(t, lone.token)
	assert.Equal(t, joined.Str("ticketId"), welcome.Obj("state").Obj("ticket").Str("ticketId"), "the ticket follows the player")
	assert.Equal(t, "searching", welcome.Obj("state").Obj("ticket").Str("status"))
	r := moved.Request("queue.leave", nil)
	require.True(t, r.OK(), "queue.leave on the new node: %v", r)
	assert.Equal(t, "cancelled", moved.Next("queue.state").Obj("ticket").Str("status"))

	for i, n := range nodes {
		assert.NotContains(t, n.stderr.String(), "CROSSSLOT", "node %d's log", i)
	}
	t.Logf("done in %v", time.Since(start).Round(time.Millisecond))
}
