// Package browsertest drives the bundled web pages (the player console at
// /, the operator console at /admin/) in a real headless Chromium, for the
// browser tests of cmd/lobbyd. It is one harness for all of them: it finds
// Chromium (skipping without it, except in CI), launches it with the same
// flags, fails the test when a page reports an error (an exception, a
// console error, a CSP violation), and waits only on conditions polled in
// the page, never on sleeps.
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// DefaultWait bounds one WaitFor when the test's context has no earlier
// deadline.
const DefaultWait = 20 * time.Second

// Chromium returns the Chromium to drive. Without one the test is skipped,
// except in CI (CI set), which must install it (.ci/run).
func Chromium(t testing.TB) string {
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
	t.Skip("chromium not found: install it (apt-get install chromium) to run the browser tests")
	return ""
}

// Options change how Start launches the browser.
type Options struct {
	// Width and Height are the window's size (default 1400×1000).
	Width, Height int
}

// Browser is one headless Chromium, started for one test and stopped at
// its cleanup.
type Browser struct {
	t     *testing.T
	first *Page // the browser's first tab

	mu       sync.Mutex
	problems []string
	watchers sync.WaitGroup
	tabs     []context.CancelFunc
}

// Start launches Chromium for t, bounded by ctx (give it the test's
// timeout), and opens its first tab (Browser.Page). At t's cleanup the
// browser is closed, and the test fails if any page reported a problem.
func Start(ctx context.Context, t *testing.T, opts Options) *Browser {
	t.Helper()
	chromium := Chromium(t)
	if opts.Width == 0 {
		opts.Width, opts.Height = 1400, 1000
	}
	userData := t.TempDir() // made before the browser's cleanup, so removed after it
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
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
		// Background tabs keep their timers: a test drives several at once.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.UserDataDir(userData),
		chromedp.WindowSize(opts.Width, opts.Height),
	)
	b := &Browser{t: t}
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		b.mu.Lock()
		tabs := b.tabs
		b.mu.Unlock()
		for i := len(tabs) - 1; i >= 0; i-- {
			tabs[i]()
		}
		cancelBrowser()
		cancelAlloc() // waits for the browser to exit, before TempDir's cleanup
		b.watchers.Wait()
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.problems) > 0 {
			t.Errorf("the page reported errors:\n%s", joinLines(b.problems))
		}
	})
	b.first = b.watch(bctx, "tab 1") // starts the browser
	return b
}

// Page returns the browser's first tab.
func (b *Browser) Page() *Page { return b.first }

// NewTab opens another tab in the same browser profile, as a user's new
// tab: it shares localStorage and cookies with the others, and has its own
// sessionStorage.
func (b *Browser) NewTab() *Page {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.first.Ctx)
	b.mu.Lock()
	b.tabs = append(b.tabs, cancel)
	n := len(b.tabs) + 1
	b.mu.Unlock()
	return b.watch(ctx, fmt.Sprintf("tab %d", n))
}

// watch subscribes to a tab's console (opening the tab) and records what
// counts as a problem: an exception, or a console error that is not about
// the network (a CSP violation is one; an HTTP error status or a refused
// WebSocket handshake a test provokes is not).
func (b *Browser) watch(ctx context.Context, name string) *Page {
	b.t.Helper()
	messages := chromedp.Console(ctx)
	if err := chromedp.Do(ctx); err != nil { // opens the tab now
		b.t.Fatalf("open %s: %v", name, err)
	}
	b.watchers.Add(1)
	go func() {
		defer b.watchers.Done()
		for m, err := range messages {
			if err != nil {
				return
			}
			if !m.IsException() && (m.Type != chromedp.ConsoleError || m.Source == "network") {
				continue
			}
			b.mu.Lock()
			b.problems = append(b.problems, name+": "+m.String())
			b.mu.Unlock()
		}
	}()
	return &Page{Ctx: ctx, t: b.t, name: name}
}

func joinLines(lines []string) string {
	out := ""
	for _, l := range lines {
		out += "  " + l + "\n"
	}
	return out
}

// Page is one browser tab. Its methods fail the test on error, with the
// page's text in the message.
type Page struct {
	// Ctx is the tab's chromedp context, for actions the helpers lack.
	Ctx  context.Context
	t    *testing.T
	name string
}

// Text is the page's visible text, for a failure's message.
func (p *Page) Text() string {
	short, cancel := context.WithTimeout(p.Ctx, 2*time.Second)
	defer cancel()
	text, err := chromedp.Run(short, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	if err != nil {
		return "(no page text: " + err.Error() + ")"
	}
	return text
}

// Do runs the steps in order; what names them in a failure.
func (p *Page) Do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.Ctx, steps...); err != nil {
		p.t.Fatalf("%s: %s: %v\npage:\n%s", p.name, what, err, p.Text())
	}
}

// WaitFor polls the JavaScript condition cond in the page (every 50 ms)
// until it holds, for at most DefaultWait or until the context's deadline.
func (p *Page) WaitFor(what, cond string) {
	p.t.Helper()
	_, err := chromedp.Run(p.Ctx, chromedp.Poll[bool]("!!("+cond+")",
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(p.wait())))
	if err != nil {
		p.t.Fatalf("%s: waiting for %s: %v\npage:\n%s", p.name, what, err, p.Text())
	}
}

// PollValue polls the JavaScript expression expr in the page until it
// yields a non-empty string, and returns it; it is for reading several
// things at one instant once they are there (then the test compares them).
func (p *Page) PollValue(what, expr string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.Ctx, chromedp.Poll[string]("("+expr+") || ''",
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(p.wait())))
	if err != nil {
		p.t.Fatalf("%s: waiting for %s: %v\npage:\n%s", p.name, what, err, p.Text())
	}
	return v
}

// wait is how long one poll may take: DefaultWait, or less when the
// context ends sooner.
func (p *Page) wait() time.Duration {
	wait := DefaultWait
	if dl, ok := p.Ctx.Deadline(); ok && time.Until(dl) < wait {
		wait = max(time.Until(dl), time.Millisecond)
	}
	return wait
}

// Eval evaluates a JavaScript expression that yields a string.
func (p *Page) Eval(expr string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.Ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		p.t.Fatalf("%s: evaluate %s: %v", p.name, expr, err)
	}
	return v
}

// EvalBool evaluates a JavaScript expression as a boolean (!!expr).
func (p *Page) EvalBool(expr string) bool {
	p.t.Helper()
	v, err := chromedp.Run(p.Ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
	if err != nil {
		p.t.Fatalf("%s: evaluate %s: %v", p.name, expr, err)
	}
	return v
}

// Screenshot saves the viewport as a PNG at path.
func (p *Page) Screenshot(path string) {
	p.t.Helper()
	png, err := chromedp.Run(p.Ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("%s: screenshot: %v", p.name, err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatalf("%s: screenshot: %v", p.name, err)
	}
}

// Click clicks the element as a user would, after scrolling it to the
// middle of the viewport: chromedp.Click scrolls only when the element is
// out of view, and an element at the very top may be under a sticky bar.
func Click(sel string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := chromedp.Evaluate[bool](`((el) => { el.scrollIntoView({block: 'center', inline: 'center'}); return true; })(document.querySelector(`+
			JSString(sel)+`))`)(ctx, t); err != nil {
			return chromedp.Void{}, fmt.Errorf("scroll %s into view: %w", sel, err)
		}
		return chromedp.Click(chromedp.CSS(sel))(ctx, t)
	}
}

// ClearInput empties an input as a user selecting its text and deleting it
// would (chromedp.SetValue refuses an empty value).
func ClearInput(sel string) chromedp.Action[chromedp.Void] {
	return SetInput(sel, "")
}

// SetInput sets an input's value at once and fires its input event, as a
// paste would.
func SetInput(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`((el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); return true; })(document.querySelector(`+
			JSString(sel)+`), `+JSString(value)+`)`)(ctx, t)
		return err
	})
}

// JSString quotes s as a JavaScript string literal.
func JSString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
