package web_test

import (
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/web"
)

func serve(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(web.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// get fetches p and returns the response with its body read.
func get(t *testing.T, srv *httptest.Server, p string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(srv.URL + p)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(body)
}

func mediaType(t *testing.T, res *http.Response) string {
	t.Helper()
	mt, _, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	require.NoError(t, err, "Content-Type %q", res.Header.Get("Content-Type"))
	return mt
}

func TestIndexIsTheConsole(t *testing.T) {
	res, body := get(t, serve(t), "/")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "text/html", mediaType(t, res))
	assert.Contains(t, body, `<script src="app.js" defer></script>`)
	// The Content-Security-Policy allows no inline script: every script
	// tag must load a file.
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(body, -1) {
		assert.Contains(t, tag, "src=", "inline script %s", tag)
	}
}

// assetRef matches the src and href attributes of the page.
var assetRef = regexp.MustCompile(`(?:src|href)="([^"#]*)"`)

// consoles are the two bundled pages, each with the files its page must
// reference.
var consoles = []struct {
	name    string
	handler func() http.Handler
	files   []string
}{
	{"player", web.Handler, []string{"app.js", "style.css", "favicon.svg", "common/theme.css", "common/dom.js"}},
	{"operator", web.AdminHandler, []string{"admin.js", "admin.css", "favicon.svg", "common/theme.css", "common/dom.js"}},
}

// TestReferencedAssetsAreServed fetches every file each console's page
// references. None may come from elsewhere: lobbyd often runs without
// internet access.
func TestReferencedAssetsAreServed(t *testing.T) {
	wantType := map[string][]string{
		".js":  {"text/javascript", "application/javascript"},
		".css": {"text/css"},
		".svg": {"image/svg+xml"},
	}
	for _, c := range consoles {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(c.handler())
			t.Cleanup(srv.Close)
			_, page := get(t, srv, "/")
			var seen []string
			for _, m := range assetRef.FindAllStringSubmatch(page, -1) {
				ref := m[1]
				if ref == "./" || ref == "" {
					continue // the "another player in a new tab" link is this page
				}
				if strings.Contains(ref, "//") || strings.HasPrefix(ref, "/") {
					t.Errorf("%q is not a file bundled next to index.html", ref)
					continue
				}
				seen = append(seen, ref)
				t.Run(ref, func(t *testing.T) {
					res, body := get(t, srv, "/"+ref)
					require.Equal(t, http.StatusOK, res.StatusCode)
					assert.NotEmpty(t, body)
					assert.Contains(t, wantType[path.Ext(ref)], mediaType(t, res))
					assert.Equal(t, "DENY", res.Header.Get("X-Frame-Options"), "every file has the page's headers")
				})
			}
			assert.Subset(t, seen, c.files)
			// The shared script loads first: the page's own script uses it.
			assert.Less(t, strings.Index(page, `src="common/dom.js"`), strings.Index(page, `src="`+c.files[0]+`"`))
		})
	}
}

// table returns the body of the object literal app.js assigns to name.
func table(t *testing.T, js, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)\bconst ` + name + ` = \{\n(.*?)\n  \};`).FindStringSubmatch(js)
	require.NotNil(t, m, "app.js has no %s table", name)
	return m[1]
}

// TestAppSpeaksTheProtocol guards app.js against losing a handler: it must
// know every event the server sends and act on every close code as
// docs/protocol.md says.
func TestAppSpeaksTheProtocol(t *testing.T) {
	_, js := get(t, serve(t), "/app.js")

	handlers := table(t, js, "EVENT_HANDLERS")
	for _, event := range []string{"welcome", "queue.state", "match.found", "match.ready", "match.failed", "session.replaced"} {
		assert.True(t, strings.Contains(handlers, "'"+event+"':"), "EVENT_HANDLERS has no %s", event)
	}
	for _, request := range []string{"ping", "queue.join", "queue.leave"} {
		assert.True(t, strings.Contains(js, "request('"+request+"'"), "app.js never sends %s", request)
	}

	codes := table(t, js, "CLOSE_CODES")
	for _, c := range []struct{ code, action string }{
		{"1000", "stop"},
		{"1001", "backoff"},
		{"1003", "stop"},
		{"1008", "long-backoff"},
		{"1009", "stop"},
		{"1011", "backoff"},
		{"4001", "stop"},
		{"4003", "new-token"},
		{"4004", "backoff"},
	} {
		rule := regexp.MustCompile(`(?m)^\s*` + c.code + `: \{[^}]*\baction: '([a-z-]+)'`).FindStringSubmatch(codes)
		if assert.NotNil(t, rule, "CLOSE_CODES has no %s", c.code) {
			assert.Equal(t, c.action, rule[1], "close code %s", c.code)
		}
	}
}

// TestAppNeverParsesServerText: server-provided text goes through
// textContent only, so no HTML sink may appear in either console's scripts.
func TestAppNeverParsesServerText(t *testing.T) {
	for _, c := range consoles {
		srv := httptest.NewServer(c.handler())
		t.Cleanup(srv.Close)
		for _, f := range c.files {
			if path.Ext(f) != ".js" {
				continue
			}
			_, js := get(t, srv, "/"+f)
			for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
				assert.NotContains(t, js, sink, "%s of the %s console", f, c.name)
			}
		}
	}
}

// TestAppSpeaksLobbies guards the lobby panel: it must act on every lobby
// event, send every lobby request, and restore the lobby from welcome.
func TestAppSpeaksLobbies(t *testing.T) {
	_, js := get(t, serve(t), "/app.js")
	assert.Regexp(t, `l\.version < old\.version`, js, "older lobby snapshots (by version) are ignored")

	handlers := table(t, js, "EVENT_HANDLERS")
	for _, event := range []string{"lobby.state", "lobby.chat", "lobby.removed"} {
		entry := regexp.MustCompile(`'` + regexp.QuoteMeta(event) + `': (\w+),`).FindStringSubmatch(handlers)
		if assert.NotNil(t, entry, "EVENT_HANDLERS has no %s", event) {
			// The handler must exist, and do more than return.
			body := regexp.MustCompile(`(?s)\n  function ` + entry[1] + `\(f\) \{\n(.*?)\n  \}\n`).FindStringSubmatch(js)
			if assert.NotNil(t, body, "%s's handler %s is not defined", event, entry[1]) {
				assert.True(t, strings.Contains(body[1], "f."), "%s does not read the event", entry[1])
			}
		}
	}
	for _, request := range []string{
		"lobby.create", "lobby.join", "lobby.leave", "lobby.list", "lobby.update",
		"lobby.kick", "lobby.promote", "lobby.ready", "lobby.chat",
	} {
		assert.True(t, strings.Contains(js, "request('"+request+"'"), "app.js never sends %s", request)
	}

	welcome := regexp.MustCompile(`(?s)\n  function onWelcome\(f\) \{\n(.*?)\n  \}\n`).FindStringSubmatch(js)
	if assert.NotNil(t, welcome, "app.js has no onWelcome") {
		assert.True(t, strings.Contains(welcome[1], "state.lobby"), "onWelcome ignores welcome.state.lobby")
	}
	// A chat message that hit the rate limit is explained, not just logged.
	assert.True(t, strings.Contains(js, "'rate_limited'"), "app.js does not handle rate_limited")
}

// TestAppFindsItsElements: every element app.js looks up by id is on the page.
func TestAppFindsItsElements(t *testing.T) {
	srv := serve(t)
	_, page := get(t, srv, "/")
	_, js := get(t, srv, "/app.js")
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(`\bid="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		ids[m[1]] = true
	}
	looked := regexp.MustCompile(`\$\('([^']+)'\)`).FindAllStringSubmatch(js, -1)
	require.NotEmpty(t, looked)
	for _, m := range looked {
		assert.True(t, ids[m[1]], "app.js looks up #%s, which index.html does not have", m[1])
	}
}

// TestFormControlsAreLabelled: every text field and select of the page has
// a <label for> (check boxes and radio buttons sit inside theirs).
func TestFormControlsAreLabelled(t *testing.T) {
	_, page := get(t, serve(t), "/")
	for _, tag := range regexp.MustCompile(`<(?:input|select|textarea)\b[^>]*>`).FindAllString(page, -1) {
		if strings.Contains(tag, `type="checkbox"`) || strings.Contains(tag, `type="radio"`) {
			continue
		}
		id := regexp.MustCompile(`\bid="([^"]+)"`).FindStringSubmatch(tag)
		if !assert.NotNil(t, id, "%s has no id for a label", tag) {
			continue
		}
		assert.Contains(t, page, `for="`+id[1]+`"`, "#%s has no label", id[1])
	}
}
