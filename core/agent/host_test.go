package agent

import (
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

// TestHostAddress: workloads listen on the agent's Host, given to them in
// HOST, and their endpoints carry it, so edges on other hosts reach them;
// without Host they stay on loopback 127.0.0.1.
func TestHostAddress(t *testing.T) {
	tests := []struct {
		name, host, want string
	}{
		{"default loopback", "", "127.0.0.1"},
		{"advertise address", "127.0.0.2", "127.0.0.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			d := e.spore("v1", nil)
			a := e.startAgent("n1", func(o *Options) { o.Host = tt.host })
			e.publish(fabric.Plan{Digest: d})
			st := a.readyWith(t, "billing", d, 10*time.Second)
			ep, ok := endpointOf(e.fab, "billing", "n1")
			if !ok {
				t.Fatal("no endpoint")
			}
			u, err := url.Parse(ep.URL)
			if err != nil || u.Hostname() != tt.want || u.Port() != strconv.Itoa(st.Port) {
				t.Fatalf("endpoint %q, want host %s port %d", ep.URL, tt.want, st.Port)
			}
			if _, err := get(ep.URL + "/hello"); err != nil {
				t.Fatalf("GET the endpoint: %v", err)
			}
			if tt.want != "127.0.0.1" {
				// Listening on HOST only: the same port on 127.0.0.1 is closed.
				c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", u.Port()), time.Second)
				if err == nil {
					c.Close()
					t.Fatalf("the workload listens on 127.0.0.1:%s too, not only on HOST", u.Port())
				}
			}
		})
	}
}
