package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	var status atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-r.Context().Done() // until the client gives up after its 2 s
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	for _, tc := range []struct {
		name   string
		status int
		args   []string
		want   int
		stderr string
	}{
		{"ok", 200, []string{srv.URL + "/readyz"}, 0, ""},
		{"no content", 204, []string{srv.URL + "/readyz"}, 0, ""},
		{"not ready", 503, []string{srv.URL + "/readyz"}, 1, "503"},
		{"redirect", 304, []string{srv.URL + "/readyz"}, 1, "304"},
		{"refused", 200, []string{deadURL + "/readyz"}, 1, "refused"},
		{"timeout", 200, []string{srv.URL + "/slow"}, 1, "Timeout"},
		{"no url", 200, nil, 1, "usage"},
		{"two urls", 200, []string{srv.URL, srv.URL}, 1, "usage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status.Store(int32(tc.status))
			var stderr strings.Builder
			if got := run(tc.args, &stderr); got != tc.want {
				t.Fatalf("run(%q) = %d, want %d (stderr %q)", tc.args, got, tc.want, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tc.stderr)
			}
		})
	}
}
