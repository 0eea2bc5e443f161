package edge

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// siteDir writes a snapshot's files and returns the route serving them.
func siteDir(t *testing.T, id string, files map[string]string, hosts ...string) SiteRoute {
	t.Helper()
	dir := t.TempDir()
	r := SiteRoute{ID: id, Hosts: hosts, Dir: dir, ETags: map[string]string{}}
	for n, body := range files {
		p := filepath.Join(dir, n)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		r.ETags[n] = fmt.Sprintf("%x", len(body)) + "-" + id + "-" + n
		if n == "404.html" {
			r.NotFound = n
		}
	}
	return r
}

func getHost(t *testing.T, base, host, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestSitesByHost(t *testing.T) {
	e := startEdge(t, Options{Source: newFabric(t)})
	base := "http://" + e.Addr().String()
	e.SetSites([]SiteRoute{siteDir(t, "blog", map[string]string{
		"index.html":      "<h1>home</h1>",
		"docs/index.html": "<h1>docs</h1>",
		"style.css":       "body{color:red}",
		"404.html":        "<h1>lost</h1>",
	}, "blog.example.test", "www.blog.example.test")})

	tests := []struct {
		name, host, path string
		hdr              map[string]string
		code             int
		body, ctype      string
	}{
		{"index", "blog.example.test", "/", nil, 200, "<h1>home</h1>", "text/html; charset=utf-8"},
		{"alias with port", "WWW.blog.example.test:8080", "/", nil, 200, "<h1>home</h1>", "text/html; charset=utf-8"},
		{"nested index", "blog.example.test", "/docs/", nil, 200, "<h1>docs</h1>", "text/html; charset=utf-8"},
		{"dir redirect", "blog.example.test", "/docs", nil, 301, "", ""},
		{"css", "blog.example.test", "/style.css", nil, 200, "body{color:red}", "text/css; charset=utf-8"},
		{"range", "blog.example.test", "/style.css", map[string]string{"Range": "bytes=0-3"}, 206, "body", ""},
		{"404 page", "blog.example.test", "/missing", nil, 404, "<h1>lost</h1>", "text/html; charset=utf-8"},
		{"climb stays inside", "blog.example.test", "/../../etc/passwd", nil, 404, "<h1>lost</h1>", ""},
		{"other host falls through to apps", "other.test", "/", nil, 404, "", ""},
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, base+tt.path, nil)
			req.Host = tt.host
			for k, v := range tt.hdr {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code || (tt.body != "" && string(b) != tt.body) {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, b, tt.code, tt.body)
			}
			if tt.ctype != "" && resp.Header.Get("Content-Type") != tt.ctype {
				t.Fatalf("content type %q, want %q", resp.Header.Get("Content-Type"), tt.ctype)
			}
			if resp.Header.Get(HeaderEdge) == "" {
				t.Fatal("no edge stamp")
			}
		})
	}

	// Conditional requests.
	resp, _ := getHost(t, base, "blog.example.test", "/style.css", nil)
	etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if etag == "" || lm == "" {
		t.Fatalf("no validators: etag %q last-modified %q", etag, lm)
	}
	if resp, _ := getHost(t, base, "blog.example.test", "/style.css", map[string]string{"If-None-Match": etag}); resp.StatusCode != 304 {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}
	if resp, _ := getHost(t, base, "blog.example.test", "/style.css", map[string]string{"If-Modified-Since": lm}); resp.StatusCode != 304 {
		t.Fatalf("If-Modified-Since: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/", nil)
	req.Host = "blog.example.test"
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 405 {
		t.Fatalf("POST: %v %v", resp, err)
	}
}

// Switching versions under load: every answer is one whole version, none
// fails.
func TestSiteSwitchUnderLoad(t *testing.T) {
	e := startEdge(t, Options{Source: newFabric(t)})
	base := "http://" + e.Addr().String()
	versions := make([]SiteRoute, 20)
	for i := range versions {
		versions[i] = siteDir(t, "s", map[string]string{"index.html": strings.Repeat(fmt.Sprintf("v%02d;", i), 2000)}, "s.test")
	}
	e.SetSites(versions[:1])
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var stop atomic.Bool
	var failed, mixed, total atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
				req.Host = "s.test"
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				total.Add(1)
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
					continue
				}
				if first := string(b[:4]); strings.Count(string(b), first) != 2000 {
					mixed.Add(1)
				}
			}
		}()
	}
	for i := 1; i < len(versions); i++ {
		e.SetSites(versions[i : i+1])
		// Let requests land on this version before the next switch.
		for n := total.Load(); total.Load() < n+5; {
			time.Sleep(time.Millisecond)
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d requests over %d switches", total.Load(), len(versions)-1)
	if failed.Load() != 0 || mixed.Load() != 0 {
		t.Fatalf("%d failed, %d mixed", failed.Load(), mixed.Load())
	}
}
