package hostings3

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// s3Proxy sits between the plugin and the S3 server: it counts requests by
// method and lets a test answer some requests itself (to inject throttling
// or refusals) or act when a request arrives (to stop the server mid-sync).
// The Host header is passed through unchanged, so signatures still verify.
type s3Proxy struct {
	URL string

	mu     sync.Mutex
	counts map[string]int
	puts   int
	// hook, when set, sees each request first; returning true means it
	// answered the request and it is not forwarded.
	hook func(w http.ResponseWriter, r *http.Request, n int) bool
}

func newS3Proxy(t testing.TB, target string) *s3Proxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &s3Proxy{counts: map[string]int{}}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host
	}, ErrorLog: log.New(io.Discard, "", 0)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.counts[r.Method]++
		objectPut := r.Method == http.MethodPut && isObjectPath(r.URL.Path)
		if objectPut {
			p.puts++
		}
		n, hook := p.puts, p.hook
		p.mu.Unlock()
		if hook != nil && hook(w, r, n) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// isObjectPath reports whether a path-style path names an object
// (/bucket/key) rather than a bucket.
func isObjectPath(p string) bool {
	p = strings.TrimPrefix(p, "/")
	i := strings.IndexByte(p, '/')
	return i > 0 && i < len(p)-1
}

// reset zeroes the counters and returns what they were.
func (p *s3Proxy) reset() (counts map[string]int, objectPuts int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	counts, objectPuts = p.counts, p.puts
	p.counts, p.puts = map[string]int{}, 0
	return counts, objectPuts
}

func (p *s3Proxy) setHook(h func(w http.ResponseWriter, r *http.Request, n int) bool) {
	p.mu.Lock()
	p.hook = h
	p.mu.Unlock()
}

// writes counts the requests that change something.
func writes(counts map[string]int) int {
	return counts[http.MethodPut] + counts[http.MethodPost] + counts[http.MethodDelete]
}
