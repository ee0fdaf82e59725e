package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/browsertest"
)

// TestConsoleInBrowser drives the operator console (web/admin) in headless
// Chromium against an in-process lobbyd: a wrong token is refused and shows
// nothing, the right one shows the queues, a queued player appears in the
// default queue's depth, and the console cancels their ticket, which the
// player sees as queue.state cancelled by the operator. Every wait is a
// condition polled in the page or a frame awaited on the socket.
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	browsertest.Chromium(t) // skips before lobbyd starts when there is none

	secret := make([]byte, 32)
	_, err := rand.Read(secret)
	require.NoError(t, err)
	adminToken := hex.EncodeToString(secret)
	s := startServer(t, map[string]string{
		"LOBBYD_DEV_AUTH":    "true",
		"LOBBYD_ADMIN_ADDR":  "127.0.0.1:0",
		"LOBBYD_ADMIN_TOKEN": adminToken,
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Network errors are expected (the wrong token's 401); anything else the
	// page reports fails the test.
	page := browsertest.Start(ctx, t, browsertest.Options{}).Page()
	do, waitFor, eval := page.Do, page.WaitFor, page.Eval
	const depth = `(document.querySelector('#queues [data-queue="default"] .depth') || {}).textContent`

	// A wrong token: refused, forgotten, and nothing shown.
	do("open the console",
		chromedp.Navigate(s.AdminURL+"/admin/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), "not-the-admin-token"),
		chromedp.Click(chromedp.CSS("#signin")),
	)
	waitFor("the wrong token's error", `document.querySelector('#signin-error').textContent.toLowerCase().includes('wrong token')`)
	assert.Equal(t, "true", eval(`String(document.querySelector('#console').hidden)`), "no console without the token")
	assert.Equal(t, "0", eval(`String(document.querySelectorAll('#queues tbody tr, #nodes tbody tr, #matches tbody tr').length)`), "no data")
	assert.Equal(t, "0", eval(`String(sessionStorage.length + localStorage.length)`), "the wrong token is not kept")

	// The right token: the queues show, the default one empty.
	do("sign in",
		browsertest.ClearInput("#token"),
		chromedp.SendKeys(chromedp.CSS("#token"), adminToken),
		chromedp.Click(chromedp.CSS("#signin")),
	)
	waitFor("the default queue's depth 0", depth+` === '0'`)
	assert.Equal(t, adminToken, eval(`sessionStorage.getItem('lobbyd-admin-token') || ''`), "the token is in sessionStorage")
	assert.Equal(t, "0", eval(`String(localStorage.length)`), "nothing in localStorage")
	assert.NotContains(t, eval(`location.href`), adminToken, "the token is not in the URL")
	assert.Empty(t, eval(`document.querySelector('#token').value`), "the token field is emptied")
	assert.Equal(t, "true", eval(`String(document.querySelector('#signin-panel').hidden)`))

	// A player queues alone in a 4-player queue: they stay searching.
	tok, playerID := s.devToken(t, "console-player", "")
	player, _ := s.connect(t, tok)
	joined := player.Request("queue.join", map[string]any{"queue": "default"})
	require.True(t, joined.OK(), "queue.join: %v", joined)
	require.Equal(t, "searching", joined.Obj("data").Obj("ticket").Str("status"), "queue.join: %v", joined)
	waitFor("the default queue's depth 1", depth+` === '1'`)

	// The console finds the player's ticket and cancels it.
	do("look the player up",
		browsertest.ClearInput("#player-id"),
		chromedp.SendKeys(chromedp.CSS("#player-id"), playerID),
		chromedp.Click(chromedp.CSS("#player-lookup")),
	)
	waitFor("the player's ticket searching", `document.querySelector('#player-result').dataset.id === `+browsertest.JSString(playerID)+
		` && (document.querySelector('#player-result .ticket-status') || {}).textContent === 'searching'`)
	do("cancel the ticket", chromedp.Click(chromedp.CSS("#cancel-ticket")))

	for {
		f := player.Next("queue.state")
		if f.Obj("ticket").Str("status") == "searching" {
			continue // an update sent before the cancellation
		}
		assert.Equal(t, "cancelled", f.Obj("ticket").Str("status"), "queue.state: %v", f)
		assert.Equal(t, "operator", f.Str("reason"), "queue.state: %v", f)
		break
	}
	waitFor("the action's result", `document.querySelector('#status').dataset.kind === 'ok' && document.querySelector('#status').textContent.includes('cancelled')`)
	waitFor("the default queue's depth 0 again", depth+` === '0'`)
	waitFor("the looked-up ticket no longer searching", `(document.querySelector('#player-result .ticket-status') || {}).textContent !== 'searching'`)

	// lobbyd goes away: the console says so, and keeps the data it had.
	s.shutdown(t)
	waitFor("the unreachable banner", `!document.querySelector('#banner').hidden && document.querySelector('#banner').textContent.includes('admin API unreachable')`)
	assert.Equal(t, "false", eval(`String(document.querySelector('#console').hidden)`), "still signed in")

	// Signing out forgets the token and the data.
	do("sign out", chromedp.Click(chromedp.CSS("#signout")))
	waitFor("the sign-in form", `!document.querySelector('#signin-panel').hidden && document.querySelector('#console').hidden`)
	assert.Equal(t, "0", eval(`String(sessionStorage.length + document.querySelectorAll('#queues tbody tr').length)`), "nothing kept after signing out")
	assert.False(t, strings.Contains(eval(`document.body.innerText`), playerID), "the player's id is gone from the page")
}
