// Package web holds the bundled lobby UI, embedded in the binary.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

//go:embed admin
var adminFiles embed.FS

// common holds what both consoles load (the palette and base styles, the
// DOM helper), served under each console's root as common/.
//
//go:embed common
var common embed.FS

// contentSecurityPolicy is the page's policy, sent as a header: a meta tag
// cannot say frame-ancestors, so only the header stops another site from
// framing the console (clickjacking).
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the lobby UI at /, with headers that keep other sites from
// framing it or the browser from guessing content types.
func Handler() http.Handler { return serve(static, "static", contentSecurityPolicy, "") }

// serve serves the files under dir of fsys, and the common files under
// common/, with policy as the page's Content-Security-Policy, and
// cacheControl when not empty.
func serve(fsys fs.FS, dir, policy, cacheControl string) http.Handler {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux := http.NewServeMux()
	mux.Handle("/common/", http.FileServerFS(common))
	mux.Handle("/", http.FileServerFS(sub))
	files := http.Handler(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", policy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if cacheControl != "" {
			h.Set("Cache-Control", cacheControl)
		}
		files.ServeHTTP(w, r)
	})
}

// adminPolicy is the operator console's policy: it talks to its own API only.
const adminPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// AdminHandler serves the operator console (web/admin) at its root; lobbyd
// mounts it at /admin/ on the admin listener only. The page holds no data:
// it asks for the admin token and calls the admin API with it.
func AdminHandler() http.Handler { return serve(adminFiles, "admin", adminPolicy, "no-store") }
