package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chromiumPath returns the Chromium to drive. Without one the test is
// skipped, except in CI (CI set), which must install it (.ci/run).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if st, err := os.Stat("/usr/bin/chromium"); err == nil && !st.IsDir() {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found: CI must install it (see .ci/run)")
	}
	t.Skip("chromium not found: install it (apt-get install chromium) to run the operator console's browser test")
	return ""
}

// clearInput empties an input as a user selecting its text and deleting it
// would (chromedp.SetValue refuses an empty value).
func clearInput(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`((el) => { el.value = ''; el.dispatchEvent(new Event('input', {bubbles: true})); return true; })(document.querySelector(`+jsString(sel)+`))`)(ctx, t)
		return err
	})
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestConsoleInBrowser drives the operator console (web/admin) in headless
// Chromium against an in-process lobbyd: a wrong token is refused and shows
// nothing, the right one shows the queues, a queued player appears in the
// default queue's depth, and the console cancels their ticket, which the
// player sees as queue.state cancelled by the operator. Every wait is a
// condition polled in the page or a frame awaited on the socket.
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)

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
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	defer cancelAlloc() // waits for the browser to exit, before TempDir's cleanup
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	// What the page reports: an exception, a console error, or a browser
	// error that is not about the network (a CSP violation is one) fails
	// the test. Network errors are expected: the wrong token's 401.
	var (
		mu       sync.Mutex
		problems []string
	)
	messages := chromedp.Console(bctx) // starts the browser
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source != "network") {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	defer func() {
		cancelBrowser()
		<-watched
		mu.Lock()
		defer mu.Unlock()
		assert.Empty(t, problems, "the page reported errors")
	}()

	// pageText is the page's text, for a failure's message.
	pageText := func() string {
		short, cancel := context.WithTimeout(bctx, 2*time.Second)
		defer cancel()
		text, err := chromedp.Run(short, chromedp.Evaluate[string](`document.body.innerText`))
		if err != nil {
			return "(no page text: " + err.Error() + ")"
		}
		return text
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v\npage:\n%s", what, err, pageText())
		}
	}
	// waitFor polls a JavaScript condition in the page until it holds.
	waitFor := func(what, cond string) {
		t.Helper()
		_, err := chromedp.Run(bctx, chromedp.Poll[bool]("!!("+cond+")",
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
		if err != nil {
			t.Fatalf("waiting for %s: %v\npage:\n%s", what, err, pageText())
		}
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[string](expr))
		require.NoError(t, err, "evaluate %s", expr)
		return v
	}
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
		clearInput("#token"),
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
		clearInput("#player-id"),
		chromedp.SendKeys(chromedp.CSS("#player-id"), playerID),
		chromedp.Click(chromedp.CSS("#player-lookup")),
	)
	waitFor("the player's ticket searching", `document.querySelector('#player-result').dataset.id === `+jsString(playerID)+
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
