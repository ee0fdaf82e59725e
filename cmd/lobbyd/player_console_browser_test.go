package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/browsertest"
	"github.com/lobbyd/lobbyd/lobby/lobbytest"
	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
)

// The player console (web/static, served at /) in headless Chromium
// against an in-process lobbyd in dev mode with a fake PlayFab. The other
// players are Go sockets (lobbytest). Every wait is a condition polled in
// the page (browsertest) or a frame awaited on a socket (Client.Next).

// startPlayerConsole starts lobbyd with a fake PlayFab (fake's faults, env
// added) and a browser; it skips before starting anything without Chromium.
func startPlayerConsole(ctx context.Context, t *testing.T, faults fakeplayfab.Faults, env map[string]string, opts browsertest.Options) (*server, *browsertest.Browser) {
	t.Helper()
	browsertest.Chromium(t)
	srv, _ := startWithFakeConfig(t, fakeplayfab.Config{Logger: quietFake, Faults: faults}, env)
	return srv, browsertest.Start(ctx, t, opts)
}

// Selectors and expressions of the player console.
const (
	connReady    = `document.querySelector('#status-conn').dataset.state === 'ready'`
	readyCard    = `document.querySelector('#match .match-card.ready')`
	partyShown   = `(document.querySelector('#match .match-card.ready [data-field="Party ID"]') || {}).textContent`
	inviteShown  = `(document.querySelector('#match .match-card.ready [data-field="Invitation ID"]') || {}).textContent`
	ticketStatus = `document.querySelector('#status-ticket').dataset.state`
)

// openConsole loads the console in p and waits for its scripts to run.
func openConsole(p *browsertest.Page, srv *server) {
	p.Do("open the console", chromedp.Navigate(srv.URL+"/"))
	p.WaitFor("the sign-in form", `document.querySelector('#status-conn') && !document.querySelector('#signin').hidden`)
}

// signIn gets a development token as name through the form, waits for the
// welcome, and returns the player id the page shows.
func signIn(p *browsertest.Page, name string) string {
	p.Do("sign in as "+name,
		browsertest.SetInput("#name", name),
		browsertest.Click("#signin-button"),
	)
	p.WaitFor("connected", connReady)
	return p.Eval(`document.querySelector('#id-player').textContent`)
}

// joinFromPage presses Join queue once it is enabled, and waits for the
// ticket to search.
func joinFromPage(p *browsertest.Page) {
	p.WaitFor("Join queue enabled", `!document.querySelector('#join-button').disabled`)
	p.Do("join the queue", browsertest.Click("#join-button"))
	p.WaitFor("the ticket searching", ticketStatus+` === 'searching'`)
}

// goPlayers connects n socket players and queues them in the default queue.
func goPlayers(t *testing.T, srv *server, prefix string, n int) []*lobbytest.Client {
	t.Helper()
	out := make([]*lobbytest.Client, n)
	for i := range out {
		tok, _ := srv.devToken(t, fmt.Sprintf("%s%d", prefix, i), "")
		out[i], _ = srv.connect(t, tok)
		r := out[i].Request("queue.join", map[string]any{"queue": "default"})
		require.True(t, r.OK(), "queue.join: %v", r)
	}
	return out
}

// TestPlayerConsoleMatchSurvivesReload: the browser player and three socket
// players are matched; the page shows match.ready's party and invitation;
// after a reload it still does (the server does not send a delivered
// match again: the tab kept it), saying where it came from; dismissed, the
// match stays in the history, which also survives a reload.
func TestPlayerConsoleMatchSurvivesReload(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, b := startPlayerConsole(ctx, t, fakeplayfab.Faults{}, nil, browsertest.Options{})
	p := b.Page()
	openConsole(p, srv)
	me := signIn(p, "browser-ana")
	require.NotEmpty(t, me)
	joinFromPage(p)

	others := goPlayers(t, srv, "sock", 3)
	ready := others[0].Next("match.ready")
	party, invitation := ready.Str("partyId"), ready.Str("invitationId")
	require.NotEmpty(t, party)
	require.NotEmpty(t, invitation)
	assert.Contains(t, fmt.Sprint(ready["players"]), me, "the browser player is in the match")

	p.WaitFor("the party id", partyShown+` === `+browsertest.JSString(party))
	assert.Equal(t, invitation, p.Eval(inviteShown))
	assert.Equal(t, "live", p.Eval(readyCard+`.dataset.source`))
	assert.Equal(t, "ready", p.Eval(`document.querySelector('#status-match').dataset.state`))
	assert.Contains(t, p.Eval(`document.querySelector('#status-match-text').textContent`), party[:8], "the status bar names the party")
	assert.Contains(t, p.Eval(`document.querySelector('#status-match').title`), party)
	assert.Contains(t, p.Eval(readyCard+`.textContent`), "PlayFab does not say which one it picked", "regions are a preference order, not an allocated region")

	p.Do("reload", chromedp.Reload())
	p.WaitFor("connected again", connReady)
	p.WaitFor("the party id after the reload", partyShown+` === `+browsertest.JSString(party))
	assert.Equal(t, invitation, p.Eval(inviteShown))
	// Usually the server delivered the match and leaves it out of welcome
	// (the tab kept it: "stored"); rarely its acknowledgement had not
	// reached Redis and welcome.state.match carries it again.
	source := p.Eval(readyCard + `.dataset.source`)
	assert.Contains(t, []string{"stored", "welcome"}, source)
	badge := map[string]string{"stored": "saved in this tab", "welcome": "restored on reconnect"}[source]
	assert.Contains(t, p.Eval(readyCard+`.querySelector('header').textContent`), badge, "the card says where the match came from")
	assert.Equal(t, me, p.Eval(`document.querySelector('#id-player').textContent`), "the same player")

	p.Do("dismiss the match", browsertest.Click(`#match .match-card.ready header button`))
	historyParty := `[...document.querySelectorAll('#history-list code.party')].map((c) => c.textContent).join(',')`
	p.WaitFor("the match in the history", `!document.querySelector('#history').hidden && `+historyParty+` === `+browsertest.JSString(party))
	p.Do("reload again", chromedp.Reload())
	p.WaitFor("connected again", connReady)
	p.WaitFor("the history after the reload", historyParty+` === `+browsertest.JSString(party))
	assert.Contains(t, p.Eval(`document.querySelector('#history-list').textContent`), invitation)
	assert.True(t, p.EvalBool(`!document.querySelector('#match .match-card')`), "a dismissed match stays dismissed")
}

// TestPlayerConsoleQueueSurvivesReload: with a short recent wait, the
// ticket's estimate does not read "0:00"; a reload mid-queue keeps the
// ticket, its estimate and what it was queued with (skill, regions in
// order), in the card, the status bar and the form.
func TestPlayerConsoleQueueSurvivesReload(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, b := startPlayerConsole(ctx, t, fakeplayfab.Faults{}, nil, browsertest.Options{})

	// Four socket players make a quick match: the queue's recent wait is
	// short. A probe joins and leaves until its node has read the figure,
	// so the browser's join carries it.
	for _, c := range goPlayers(t, srv, "quick", 4) {
		c.Next("match.ready")
	}
	tok, _ := srv.devToken(t, "probe", "")
	probe, _ := srv.connect(t, tok)
	require.Eventually(t, func() bool {
		r := probe.Request("queue.join", map[string]any{"queue": "default"})
		require.True(t, r.OK(), "queue.join: %v", r)
		_, has := r.Obj("data").Obj("ticket")["estimatedWaitMs"]
		require.True(t, probe.Request("queue.leave", nil).OK())
		probe.Next("queue.state")
		return has
	}, 10*time.Second, 50*time.Millisecond, "the node reads the estimate")

	p := b.Page()
	openConsole(p, srv)
	signIn(p, "browser-queuer")
	p.WaitFor("the regions", `document.querySelectorAll('#regions input').length >= 2`)
	p.Do("pick skill and regions",
		browsertest.SetInput("#skill", "1500"),
		browsertest.Click(`#regions input[value="WestUs"]`),
		browsertest.Click(`#regions input[value="EastUs"]`),
	)
	joinFromPage(p)
	ticketID := p.Eval(`document.querySelector('#ticket-id').textContent`)
	require.NotEmpty(t, ticketID)
	p.WaitFor("the estimate", `!document.querySelector('#ticket-eta').hidden`)
	eta := p.Eval(`document.querySelector('#ticket-eta').textContent`)
	assert.NotContains(t, eta, "0:00", "a short wait is not a stopwatch at zero")
	assert.Regexp(t, `^(under a second|about \d+ s) `, eta)
	const asked = "skill 1500 · regions WestUs > EastUs"
	assert.Equal(t, asked, p.Eval(`document.querySelector('#ticket-asked').textContent`))
	assert.Contains(t, p.Eval(`document.querySelector('#status-ticket-text').textContent`), "ETA")

	p.Do("reload mid-queue", chromedp.Reload())
	p.WaitFor("connected again", connReady)
	p.WaitFor("the same ticket searching", ticketStatus+` === 'searching' && document.querySelector('#ticket-id').textContent === `+browsertest.JSString(ticketID))
	assert.Equal(t, eta, p.Eval(`document.querySelector('#ticket-eta').textContent`), "the estimate survives")
	assert.Equal(t, asked, p.Eval(`document.querySelector('#ticket-asked').textContent`), "the options survive")
	assert.Contains(t, p.Eval(`document.querySelector('#status-ticket-text').textContent`), "ETA")
	p.WaitFor("the regions ticked again", `document.querySelectorAll('#regions input:checked').length === 2`)
	assert.Equal(t, "1500", p.Eval(`document.querySelector('#skill').value`), "the form keeps the skill")
	assert.Equal(t, "WestUs 1,EastUs 2", p.Eval(`[...document.querySelectorAll('#regions label')].filter((l) => l.querySelector('input').checked)
		.map((l) => l.querySelector('input').value + ' ' + l.querySelector('.rank').textContent.replace(/\D/g, '')).sort().reverse().join(',')`),
		"the form keeps the regions in their order")
}

// TestPlayerConsoleStatusBarOnPhone: at 390×844, with a match shown, the
// status bar (connection, ticket, match) is in the viewport after scrolling
// to the bottom of a page several screens tall. With
// LOBBYD_SCREENSHOT_DIR set, it saves player-phone.png and
// player-desktop.png there.
func TestPlayerConsoleStatusBarOnPhone(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, b := startPlayerConsole(ctx, t, fakeplayfab.Faults{}, nil, browsertest.Options{})
	p := b.Page()
	p.Do("a phone's viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulatePortrait, chromedp.EmulateMobile))
	openConsole(p, srv)
	signIn(p, "phone-player")
	joinFromPage(p)
	party := goPlayers(t, srv, "tall", 3)[0].Next("match.ready").Str("partyId")
	p.WaitFor("the party id", partyShown+` === `+browsertest.JSString(party))

	p.Do("scroll to the bottom", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, document.documentElement.scrollHeight)`))
	p.WaitFor("the bottom", `window.scrollY > 0 && window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 2`)
	assert.True(t, p.EvalBool(`document.documentElement.scrollHeight > 2 * window.innerHeight`), "the page is several screens tall: the check means something")
	for _, item := range []string{"status-conn", "status-ticket", "status-match"} {
		inView := `((el) => { const r = el.getBoundingClientRect();
			const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
			return r.width > 0 && r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight && r.left >= 0 && r.right <= window.innerWidth && el.contains(hit); })(document.getElementById('` + item + `'))`
		assert.True(t, p.EvalBool(inView), "%s is in the viewport, uncovered, at the bottom of the page", item)
	}
	assert.Equal(t, "Connected", p.Eval(`document.querySelector('#conn-text').textContent`))
	assert.Equal(t, "matched", p.Eval(ticketStatus))
	assert.Contains(t, p.Eval(`document.querySelector('#status-match-text').textContent`), "ready")
	assert.True(t, p.EvalBool(`document.documentElement.scrollWidth <= window.innerWidth`), "no sideways scrolling on a phone")

	dir := os.Getenv("LOBBYD_SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	p.Do("show the match", chromedp.Evaluate[chromedp.Void](`document.querySelector('#match-panel').scrollIntoView()`))
	p.WaitFor("the match below the status bar", `Math.abs(document.querySelector('#match-panel').getBoundingClientRect().top - document.querySelector('#statusbar').getBoundingClientRect().bottom - 8) < 2`)
	p.Screenshot(filepath.Join(dir, "player-phone.png"))
	p.Do("a desktop's viewport", chromedp.EmulateViewport(1280, 900), chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	p.WaitFor("the desktop layout", `window.innerWidth === 1280 && window.scrollY === 0`)
	p.Screenshot(filepath.Join(dir, "player-desktop.png"))
}

// TestPlayerConsoleNoticesClear: notices of things that happened clear by
// themselves: "Slow down" after lobby.chat's rate_limited, and "You left
// lobby …".
func TestPlayerConsoleNoticesClear(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, b := startPlayerConsole(ctx, t, fakeplayfab.Faults{}, nil, browsertest.Options{})
	p := b.Page()
	openConsole(p, srv)
	signIn(p, "chatty")
	p.WaitFor("Create lobby enabled", `!document.querySelector('#lobby-create-button').disabled`)
	p.Do("create a lobby", browsertest.Click("#lobby-create-button"))
	p.WaitFor("in the lobby", `!document.querySelector('#lobby-current').hidden`)

	// lobby.chat allows bursts of 5: eight at once get rate_limited.
	p.Do("chat too fast", chromedp.Evaluate[chromedp.Void](`for (let i = 0; i < 8; i++) {
		document.querySelector('#chat-text').value = 'hello ' + i;
		document.querySelector('#chat-form').requestSubmit();
	}`))
	p.WaitFor("Slow down", `document.querySelector('#chat-notice').textContent.includes('Slow down')`)
	p.WaitFor("Slow down cleared", `document.querySelector('#chat-notice').textContent === ''`)

	p.Do("leave the lobby", browsertest.Click("#lobby-leave-button"))
	p.WaitFor("You left", `document.querySelector('#lobby-notice').textContent.includes('You left lobby')`)
	p.WaitFor("You left cleared", `document.querySelector('#lobby-notice').textContent === ''`)
}

// TestPlayerConsoleMatchFailed: match.failed shows its cause and, requeued,
// that the ticket is back in the queue after a short hold.
func TestPlayerConsoleMatchFailed(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, b := startPlayerConsole(ctx, t, fakeplayfab.Faults{ErrorRate: 1},
		map[string]string{"LOBBYD_ALLOCATION_DEADLINE": "1500ms", "LOBBYD_LOG_LEVEL": "error"}, browsertest.Options{})
	p := b.Page()
	openConsole(p, srv)
	signIn(p, "unlucky")
	joinFromPage(p)
	failed := goPlayers(t, srv, "fail", 3)[0].Next("match.failed")
	require.Equal(t, true, failed["requeued"], "match.failed: %v", failed)

	card := `document.querySelector('#match .match-card.failed')`
	p.WaitFor("the failed match", card+` && `+card+`.textContent.includes(`+browsertest.JSString(failed.Str("matchId"))+`)`)
	text := p.Eval(card + `.textContent`)
	assert.Contains(t, text, "allocation_failed")
	assert.Contains(t, text, "back in the queue")
	assert.Contains(t, text, "short moment")
	assert.Contains(t, p.Eval(`document.querySelector('#status-match-text').textContent`), "requeued")
}

// TestPlayerConsoleSmallThings: a new tab starts with a blank name; the name
// counts characters as the server does (code points); a pasted token past
// its exp, or before its nbf, is flagged; "[1,2]" is JSON that is not an
// object; and while reconnecting, the status bar and the notice give the
// same attempt number and the button offers to stop.
func TestPlayerConsoleSmallThings(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	secret := "player-console-test-secret-0123456789abcdef"
	srv, b := startPlayerConsole(ctx, t, fakeplayfab.Faults{}, map[string]string{"LOBBYD_JWT_SECRET": secret}, browsertest.Options{})
	p := b.Page()
	openConsole(p, srv)

	// 20 game controllers are 40 UTF-16 units but 20 characters.
	pads := strings.Repeat("🎮", 20)
	p.Do("a name of emoji", browsertest.SetInput("#name", pads))
	assert.Equal(t, pads, p.Eval(`document.querySelector('#name').value`), "nothing cut")
	assert.Equal(t, "20 / 32 characters", p.Eval(`document.querySelector('#name-count').textContent`))
	p.Do("33 characters", browsertest.SetInput("#name", strings.Repeat("é", 33)))
	assert.Equal(t, "true", p.Eval(`document.querySelector('#name').getAttribute('aria-invalid')`))
	me := signIn(p, "tab-one "+pads[:4*8])
	assert.Equal(t, "tab-one "+pads[:4*8], p.Eval(`document.querySelector('#id-name').textContent`))

	// A new tab is a new player: no name carried over.
	tab2 := b.NewTab()
	openConsole(tab2, srv)
	assert.Equal(t, "", tab2.Eval(`document.querySelector('#name').value`), "a new tab's name field is blank")
	assert.Equal(t, "Not connected", tab2.Eval(`document.querySelector('#conn-text').textContent`))

	// Pasted tokens: expired, not yet valid, good.
	sign := func(claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
		require.NoError(t, err)
		return s
	}
	now := time.Now()
	expired := sign(jwt.MapClaims{"sub": "pasted-old", "exp": now.Add(-time.Hour).Unix(), "iat": now.Add(-2 * time.Hour).Unix()})
	early := sign(jwt.MapClaims{"sub": "pasted-early", "exp": now.Add(2 * time.Hour).Unix(), "nbf": now.Add(time.Hour).Unix()})
	good := sign(jwt.MapClaims{"sub": "pasted-good", "exp": now.Add(time.Hour).Unix()})
	tab2.Do("open the token form", chromedp.Evaluate[chromedp.Void](`document.querySelector('#paste-token').open = true`))
	check := `document.querySelector('#token-check')`
	for _, c := range []struct{ token, state, says string }{
		{expired, "expired", "Expired"},
		{early, "early", "Not yet valid"},
		{good, "ok", "expires"},
	} {
		tab2.Do("paste a token", browsertest.SetInput("#token-input", c.token))
		tab2.WaitFor("the token's check", check+`.dataset.state === `+browsertest.JSString(c.state))
		assert.Contains(t, tab2.Eval(check+`.textContent`), c.says)
	}
	tab2.Do("paste the expired token and connect anyway",
		browsertest.SetInput("#token-input", expired),
		browsertest.Click("#token-button"))
	tab2.WaitFor("the identity's flag", `document.querySelector('#id-token').dataset.state === 'expired'`)
	assert.Contains(t, tab2.Eval(`document.querySelector('#id-token').textContent`), "expired")
	tab2.WaitFor("the server's refusal", `document.querySelector('#status-conn').dataset.state === 'stopped' && document.querySelector('#conn-notice').textContent.includes('expired')`)

	// [1,2] is JSON; it is not an object.
	p.Do("send [1,2]",
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#raw').open = true`),
		browsertest.SetInput("#raw-text", "[1,2]"),
		browsertest.Click("#raw-send"))
	p.WaitFor("the frame in the log", `[...document.querySelectorAll('#log li.out .type')].some((e) => e.textContent === '(JSON array, not an object)')`)
	assert.False(t, p.EvalBool(`[...document.querySelectorAll('#log li .type')].some((e) => e.textContent === '(not JSON)')`))

	// The server goes away: the page reconnects with back-off. Read the
	// status bar's and the notice's attempt numbers at one instant.
	srv.shutdown(t)
	got := p.PollValue("a reconnection countdown", `(() => {
		const bar = document.querySelector('#conn-text').textContent.match(/attempt (\d+)/);
		const line = (document.querySelector('#conn-notice .countdown') || {}).textContent || '';
		const notice = line.match(/attempt (\d+)/);
		if (!bar || !notice || document.querySelector('#status-conn').dataset.state !== 'waiting') return '';
		return bar[1] + ' ' + notice[1] + ' ' + document.querySelector('#connect-button').textContent;
	})()`)
	parts := strings.SplitN(got, " ", 3)
	require.Len(t, parts, 3, got)
	n, err := strconv.Atoi(parts[0])
	require.NoError(t, err)
	assert.Positive(t, n)
	assert.Equal(t, parts[0], parts[1], "the status bar and the notice give the same attempt")
	assert.Equal(t, "Stop reconnecting", parts[2])
	assert.Equal(t, me, p.Eval(`document.querySelector('#id-player').textContent`))
}
