package console

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/edge"
)

// serve starts c on a loopback port and returns its base URL.
func serve(t *testing.T, c *Console) string {
	t.Helper()
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return srv.URL
}

func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestAccess(t *testing.T) {
	snap := func() any { return map[string]string{"hello": "mesh"} }
	tests := []struct {
		name     string
		opts     Options
		path     string
		host     string // Host header; "" keeps the listener's
		bearer   string
		cookie   string
		want     int
		location string
	}{
		{"loopback page", Options{Loopback: true}, "/console/", "", "", "", 200, ""},
		{"loopback root redirects", Options{Loopback: true}, "/", "", "", "", 302, "/console/"},
		{"loopback static", Options{Loopback: true}, "/console/static/console.js", "", "", "", 200, ""},
		{"loopback api", Options{Loopback: true, Snapshot: snap}, "/console/api/snapshot", "", "", "", 200, ""},
		{"loopback localhost name", Options{Loopback: true}, "/console/", "localhost:9090", "", "", 200, ""},
		{"loopback rebinding name", Options{Loopback: true}, "/console/", "evil.example:9090", "", "", 421, ""},
		{"network without token configured", Options{}, "/console/", "", "", "", 403, ""},
		{"network page without token", Options{Token: "s3cret-token"}, "/console/", "", "", "", 302, "/console/login"},
		{"network api without token", Options{Token: "s3cret-token"}, "/console/api/snapshot", "", "", "", 401, ""},
		{"network api wrong bearer", Options{Token: "s3cret-token"}, "/console/api/snapshot", "", "nope", "", 401, ""},
		{"network api bearer", Options{Token: "s3cret-token", Snapshot: snap}, "/console/api/snapshot", "", "s3cret-token", "", 200, ""},
		{"network api cookie", Options{Token: "s3cret-token", Snapshot: snap}, "/console/api/snapshot", "", "", "s3cret-token", 200, ""},
		{"network login form", Options{Token: "s3cret-token"}, "/console/login", "", "", "", 200, ""},
		{"network static", Options{Token: "s3cret-token"}, "/console/static/console.css", "", "", "", 200, ""},
		{"unknown path", Options{Loopback: true}, "/console/nothing", "", "", "", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := serve(t, New(tt.opts))
			req, _ := http.NewRequest("GET", base+tt.path, nil)
			if tt.host != "" {
				req.Host = tt.host
			}
			if tt.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			if tt.cookie != "" {
				req.AddCookie(&http.Cookie{Name: cookieName, Value: tt.cookie})
			}
			resp, err := noRedirect().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
			if tt.location != "" && resp.Header.Get("Location") != tt.location {
				t.Errorf("Location %q, want %q", resp.Header.Get("Location"), tt.location)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
				t.Errorf("Content-Security-Policy %q does not confine the page to the mesh", csp)
			}
			if tt.want == 200 && strings.HasSuffix(tt.path, "snapshot") && !strings.Contains(string(body), `"hello":"mesh"`) {
				t.Errorf("snapshot body %s", body)
			}
		})
	}
}

// TestLogin: the form's POST with the right token sets a cookie that
// opens the API; a wrong one sets nothing.
func TestLogin(t *testing.T) {
	base := serve(t, New(Options{Token: "s3cret-token", Snapshot: func() any { return 1 }}))
	for _, tt := range []struct {
		token  string
		cookie bool
		to     string
	}{
		{"wrong", false, "/console/login?wrong=1"},
		{"s3cret-token", true, "/console/"},
	} {
		resp, err := noRedirect().PostForm(base+"/console/login", url.Values{"token": {tt.token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tt.to {
			t.Fatalf("token %q: %s to %q, want 303 to %q", tt.token, resp.Status, resp.Header.Get("Location"), tt.to)
		}
		var ck *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == cookieName {
				ck = c
			}
		}
		if (ck != nil) != tt.cookie {
			t.Fatalf("token %q: cookie %v, want set=%v", tt.token, ck, tt.cookie)
		}
		if ck == nil {
			continue
		}
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
			t.Errorf("cookie %+v: want HttpOnly and SameSite=Strict", ck)
		}
		req, _ := http.NewRequest("GET", base+"/console/api/snapshot", nil)
		req.AddCookie(ck)
		r2, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r2.Body.Close()
		if r2.StatusCode != 200 {
			t.Fatalf("snapshot with the cookie: %s", r2.Status)
		}
	}
}

// TestLoginForm: the form says so when the token sent was wrong, and only
// then.
func TestLoginForm(t *testing.T) {
	base := serve(t, New(Options{Token: "s3cret-token"}))
	for _, tt := range []struct {
		path  string
		wrong bool
	}{
		{"/console/login", false},
		{"/console/login?wrong=1", true},
	} {
		resp, err := http.Get(base + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s %v", tt.path, resp.Status, err)
		}
		page := string(body)
		if !strings.Contains(page, `<label for="token">`) || !strings.Contains(page, `id="token"`) {
			t.Errorf("GET %s: the token field has no label:\n%s", tt.path, page)
		}
		if got := strings.Contains(page, "not the control token"); got != tt.wrong {
			t.Errorf("GET %s: says the token was wrong = %v, want %v:\n%s", tt.path, got, tt.wrong, page)
		}
	}
}

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:9090": true, "127.0.0.1": true, "[::1]:9090": true, "localhost:80": true, "LOCALHOST": true,
		"10.0.0.1:9090": false, "mesh.example": false, "127.0.0.1.nip.io:9090": false, "": false,
	} {
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestSampler: points are rates over the interval between readings, the
// latency quantiles come from the histogram's buckets, and the ring keeps
// the newest points.
func TestSampler(t *testing.T) {
	bounds := edge.LatencyBounds()
	// buckets builds cumulative counts with n requests in the bucket whose
	// upper bound is le.
	buckets := func(prev []uint64, n uint64, le float64) []uint64 {
		out := make([]uint64, len(bounds)+1)
		copy(out, prev)
		for i := range out {
			if i == len(bounds) || bounds[i] >= le {
				out[i] += n
			}
		}
		return out
	}
	var cur edge.AppTotals
	s := NewSampler(func() map[string]edge.AppTotals { return map[string]edge.AppTotals{"billing": cur} }, time.Second, 3)
	t0 := time.Unix(1000, 0)
	s.Sample(t0) // baseline
	if got := s.Series().Apps["billing"]; len(got) != 0 {
		t.Fatalf("baseline made points: %+v", got)
	}
	steps := []struct {
		reqs, errs uint64
		le         float64
		wantRate   float64
		wantErr    float64
		wantP95    float64 // ms, within 1%
	}{
		{100, 0, 0.005, 50, 0, 4.875}, // 100 requests in (2.5ms, 5ms] over 2s
		{40, 10, 0.1, 20, 5, 97.5},    // (50ms, 100ms]
		{0, 0, 0.1, 0, 0, 0},          // idle
		{2, 2, 20, 1, 1, 10000},       // beyond the last bound: the bound
	}
	at := t0
	for i, st := range steps {
		cur.Requests += st.reqs
		cur.Errors5xx += st.errs
		cur.Buckets = buckets(cur.Buckets, st.reqs, st.le)
		at = at.Add(2 * time.Second)
		s.Sample(at)
		pts := s.Series().Apps["billing"]
		p := pts[len(pts)-1]
		if p.RequestsPerS != st.wantRate || p.Errors5xxPerS != st.wantErr {
			t.Errorf("step %d: rate %v, 5xx %v; want %v, %v", i, p.RequestsPerS, p.Errors5xxPerS, st.wantRate, st.wantErr)
		}
		if math.Abs(p.LatencyP95MS-st.wantP95) > st.wantP95/100 {
			t.Errorf("step %d: p95 %vms, want %vms", i, p.LatencyP95MS, st.wantP95)
		}
		if !p.Time.Equal(at) {
			t.Errorf("step %d: time %v, want %v", i, p.Time, at)
		}
	}
	if pts := s.Series().Apps["billing"]; len(pts) != 3 || !pts[0].Time.Equal(t0.Add(4*time.Second)) {
		t.Fatalf("ring kept %d points from %v, want the newest 3", len(pts), pts[0].Time)
	}
}

func TestNilSampler(t *testing.T) {
	var s *Sampler
	if doc := s.Series(); doc.Apps == nil {
		t.Fatal("nil sampler serves no apps map")
	}
}
