package healthhttp_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/plugins/healthhttp"
	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/plugintest"
)

func TestMain(m *testing.M) {
	plugintest.ServeIfLaunched(func() sdk.Plugin { return healthhttp.New() })
	os.Exit(m.Run())
}

func newServer(t *testing.T, conns *atomic.Int32) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	// /slow answers 200 after 1s: a check whose 100ms timeout is not
	// applied would call it healthy (the default timeout is 2s).
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(time.Second):
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew && conns != nil {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestCheck(t *testing.T) {
	srv := newServer(t, nil)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name    string
		cfg     sdk.Config
		check   sdk.HealthCheck
		healthy bool
		reason  string
	}{
		{"default path", nil, sdk.HealthCheck{URL: srv.URL}, true, "status 200"},
		{"explicit path", nil, sdk.HealthCheck{URL: srv.URL, Path: "/health"}, true, "status 200"},
		{"503", nil, sdk.HealthCheck{URL: srv.URL, Path: "/broken"}, false, "status 503"},
		{"404", nil, sdk.HealthCheck{URL: srv.URL, Path: "/nope"}, false, "status 404"},
		{"configured path and status", sdk.Config{"path": "/ready", "expect_status": 204.0}, sdk.HealthCheck{URL: srv.URL}, true, "status 204"},
		{"timeout", nil, sdk.HealthCheck{URL: srv.URL, Path: "/slow", Timeout: 100 * time.Millisecond}, false, "deadline"},
		{"configured timeout", sdk.Config{"timeout": "100ms"}, sdk.HealthCheck{URL: srv.URL, Path: "/slow"}, false, "deadline"},
		{"refused", nil, sdk.HealthCheck{URL: closedURL}, false, "refused"},
	}
	paths := map[string]func(t *testing.T) sdk.HealthChecker{
		"in-process gRPC": func(t *testing.T) sdk.HealthChecker { return plugintest.Health(t, healthhttp.New()) },
		"subprocess":      func(t *testing.T) sdk.HealthChecker { return plugintest.Launch(t, sdk.KindHealth).(sdk.HealthChecker) },
	}
	for path, mk := range paths {
		hc := mk(t)
		for _, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := hc.Configure(ctx, sdk.Config(tt.cfg).WithDefaults(hc.Schema())); err != nil {
					t.Fatal(err)
				}
				res, err := hc.Check(ctx, tt.check)
				if err != nil {
					t.Fatal(err)
				}
				if res.Healthy != tt.healthy || !strings.Contains(res.Reason, tt.reason) {
					t.Fatalf("result %+v, want healthy=%v with reason containing %q", res, tt.healthy, tt.reason)
				}
			})
		}
	}
}

func TestKeepAlive(t *testing.T) {
	var conns atomic.Int32
	srv := newServer(t, &conns)
	hc := plugintest.Health(t, healthhttp.New())
	for i := 0; i < 20; i++ {
		res, err := hc.Check(context.Background(), sdk.HealthCheck{URL: srv.URL, Timeout: time.Second})
		if err != nil || !res.Healthy {
			t.Fatalf("check %d: %+v %v", i, res, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("20 sequential checks opened %d connections, want 1 (keep-alive)", n)
	}
}

func TestConfigureRefuses(t *testing.T) {
	hc := plugintest.Health(t, healthhttp.New())
	for _, cfg := range []sdk.Config{{"path": "health"}, {"timeout": "-1s"}, {"expect_status": 42.0}} {
		if err := hc.Configure(context.Background(), cfg); err == nil {
			t.Errorf("Configure(%v) accepted a bad value", cfg)
		}
	}
}
