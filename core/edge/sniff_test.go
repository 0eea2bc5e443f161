package edge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestNoContentTypeInvented: an answer that names no Content-Type reaches
// the client without one; the edge never sniffs one from the body (an
// endpoint serving user content would otherwise have "text/html" put on
// it), on either upstream path. One the endpoint names is passed on.
func TestNoContentTypeInvented(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if ct := r.URL.Query().Get("ct"); ct != "" {
			w.Header().Set("Content-Type", ct)
		} else {
			w.Header()["Content-Type"] = nil // the endpoint's own server must not sniff either
		}
		io.WriteString(w, "<html><script>alert(1)</script></html>")
	}))
	t.Cleanup(up.Close)
	e := edgeTo(t, up.URL, Options{})
	for _, tc := range []struct {
		name, method, query, want string
	}{
		{"GET, pooled path", http.MethodGet, "", ""},
		{"POST, transport path", http.MethodPost, "", ""},
		{"named by the endpoint", http.MethodGet, "?ct=application/json", "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.method == http.MethodPost {
				body = strings.NewReader("hi")
			}
			req, err := http.NewRequest(tc.method, edgeURL(e)+"/up/x"+tc.query, body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got, ok := resp.Header["Content-Type"]; tc.want == "" && ok || tc.want != "" && resp.Header.Get("Content-Type") != tc.want {
				t.Fatalf("Content-Type %q, want %q", got, tc.want)
			}
		})
	}
}
