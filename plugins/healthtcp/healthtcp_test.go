package healthtcp_test

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/plugins/healthtcp"
	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/plugintest"
)

func TestMain(m *testing.M) {
	plugintest.ServeIfLaunched(func() sdk.Plugin { return healthtcp.New() })
	os.Exit(m.Run())
}

func TestCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()

	tests := []struct {
		name    string
		url     string
		healthy bool
		wantErr bool
	}{
		{"url", "http://" + ln.Addr().String(), true, false},
		{"host:port", ln.Addr().String(), true, false},
		{"closed port", "http://" + deadAddr, false, false},
		{"no port", "tcp://127.0.0.1", false, true},
		{"garbage", "not an address", false, true},
	}
	paths := map[string]sdk.HealthChecker{
		"in-process gRPC": plugintest.Health(t, healthtcp.New()),
		"subprocess":      plugintest.Launch(t, sdk.KindHealth).(sdk.HealthChecker),
	}
	for path, hc := range paths {
		for _, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				res, err := hc.Check(ctx, sdk.HealthCheck{URL: tt.url, Timeout: time.Second})
				if (err != nil) != tt.wantErr {
					t.Fatalf("err = %v, want error %v", err, tt.wantErr)
				}
				if err != nil {
					return
				}
				if res.Healthy != tt.healthy {
					t.Fatalf("result %+v, want healthy=%v", res, tt.healthy)
				}
				if !res.Healthy && !strings.Contains(res.Reason, "refused") {
					t.Fatalf("reason %q does not say why", res.Reason)
				}
			})
		}
	}
}
