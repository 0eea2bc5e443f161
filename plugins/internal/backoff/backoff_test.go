package backoff

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"3", 3 * time.Second, true},
		{"0", 0, true},
		{"0.5", 500 * time.Millisecond, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
	}
	for _, c := range cases {
		got, ok := ParseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestDelayBounds(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Max: time.Second}
	for attempt := 1; attempt <= 8; attempt++ {
		ceil := 100 * time.Millisecond << (attempt - 1)
		if ceil > time.Second {
			ceil = time.Second
		}
		for i := 0; i < 50; i++ {
			if d := p.Delay(attempt, ""); d < 0 || d > ceil {
				t.Fatalf("attempt %d: delay %v outside [0, %v]", attempt, d, ceil)
			}
		}
	}
	if d := p.Delay(1, "2"); d != time.Second {
		t.Errorf("Retry-After over Max: got %v, want the cap %v", d, time.Second)
	}
	if d := p.Delay(1, "0.2"); d != 200*time.Millisecond {
		t.Errorf("Retry-After 0.2: got %v", d)
	}
}

func TestRetryable(t *testing.T) {
	for code, want := range map[int]bool{200: false, 400: false, 401: false, 403: false, 404: false, 409: false, 429: true, 500: true, 502: true, 503: true} {
		if got := Retryable(code); got != want {
			t.Errorf("Retryable(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestTransportRetries(t *testing.T) {
	cases := []struct {
		name     string
		answers  []int
		wantCode int
		wantHits int
		wantWait []string // Retry-After values seen by the waits
	}{
		{"ok", []int{200}, 200, 1, nil},
		{"429 then ok", []int{429, 200}, 200, 2, []string{"1"}},
		{"503 twice then ok", []int{503, 502, 200}, 200, 3, []string{"1", "1"}},
		{"400 never retried", []int{400, 200}, 400, 1, nil},
		{"401 never retried", []int{401, 200}, 401, 1, nil},
		{"attempts exhausted", []int{500, 500, 500, 500}, 500, 3, []string{"1", "1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hits := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				if string(b) != "payload" {
					t.Errorf("attempt %d body %q", hits+1, b)
				}
				code := c.answers[hits]
				hits++
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(code)
			}))
			defer srv.Close()
			var waits []time.Duration
			tr := &Transport{Policy: Policy{Attempts: 3}, Timeout: 5 * time.Second,
				Wait: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
			req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("payload"))
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.wantCode || hits != c.wantHits || len(waits) != len(c.wantWait) {
				t.Fatalf("code %d hits %d waits %v; want %d %d %v", resp.StatusCode, hits, waits, c.wantCode, c.wantHits, c.wantWait)
			}
			for _, w := range waits {
				if w != time.Second {
					t.Fatalf("waited %v, want the Retry-After of 1s", w)
				}
			}
		})
	}
}
