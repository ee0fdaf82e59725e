package partyalloc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/store/storetest"
)

// The worker's allocator is held while another attempt begins and stores
// its own party; the held call then returns: its party is the orphan,
// counted and logged once, and the players get the stored one.
func TestWorkerCountsPartyOrphanedByANewerAttempt(t *testing.T) {
	o := startOutage(t, 30*time.Second)
	ctx := context.Background()
	newer, err := o.st.BeginAttempt(ctx, "q", o.m.ID, "n2")
	require.NoError(t, err)
	require.Equal(t, 2, newer.Attempt, "the held call is attempt 1")
	_, err = o.st.StoreParty(ctx, "q", o.m.ID, newer.Attempt, "newer-party", "newer-desc", "newer-inv")
	require.NoError(t, err)

	close(o.alloc.block)
	storetest.Eventually(t, 10*time.Second, func() bool { r, _ := o.notify.counts(); return r == 1 },
		"the stored party is delivered")
	o.stop()

	assert.EqualValues(t, 1, counter(t, o.reg, "lobbyd_orphan_parties_total"))
	assertOrphanLogged(t, o, "party left orphaned: a newer attempt owns the match, or it ended")
	assert.NotContains(t, o.logs.String(), "party=newer-party", "the stored party is no orphan")
	stored, err := o.st.Match(ctx, "q", o.m.ID)
	require.NoError(t, err)
	assert.Equal(t, "newer-party", stored.PartyID, "the newer attempt's party stays")
	assert.Equal(t, "newer-party", o.notify.ready[0].PartyID)
	assert.Equal(t, 1, o.alloc.callsFor(o.m.ID))
}

// The match's record is deleted while the worker's allocator is held (Redis
// lost it): the party that call returns is the orphan, counted and logged
// once.
func TestWorkerCountsPartyOrphanedWhenTheMatchIsGone(t *testing.T) {
	o := startOutage(t, 30*time.Second)
	var deleted int
	for _, k := range o.mr.Keys() {
		if strings.HasSuffix(k, ":m:"+o.m.ID) {
			require.True(t, o.mr.Del(k))
			deleted++
		}
	}
	require.Equal(t, 1, deleted, "the match's key, among %v", o.mr.Keys())

	close(o.alloc.block)
	storetest.Eventually(t, 10*time.Second, func() bool {
		return counter(t, o.reg, "lobbyd_orphan_parties_total") >= 1
	}, "the party was counted as orphaned")
	o.stop()

	assert.EqualValues(t, 1, counter(t, o.reg, "lobbyd_orphan_parties_total"))
	assertOrphanLogged(t, o, "party left orphaned: the match's record is gone (Redis lost it)")
	r, f := o.notify.counts()
	assert.Zero(t, r+f, "nothing was delivered")
}

// assertOrphanLogged checks that the worker logged one orphan, the
// allocator's party (its PartyId is the match id), at warn, with msg.
func assertOrphanLogged(t *testing.T, o *outage, msg string) {
	t.Helper()
	var lines []string
	for _, line := range strings.Split(o.logs.String(), "\n") {
		if strings.Contains(line, "party left orphaned") {
			lines = append(lines, line)
		}
	}
	if assert.Len(t, lines, 1, "logged once:\n%s", o.logs) {
		assert.Contains(t, lines[0], `level=WARN msg="`+msg+`"`)
		assert.Contains(t, lines[0], "party="+o.m.ID)
	}
}
