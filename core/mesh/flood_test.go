package mesh_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A flood of client connections fills the edge up to its connection cap
// and no further: with the mesh held to 512 open files, the control API
// still answers and a killed workload is still restarted (its pipes, its
// port and its health checks all need descriptors), and once the flood
// goes the edge serves again.
func TestConnectionFloodSparesControlPlane(t *testing.T) {
	e := newEnv(t)
	e.restart = "always"
	e.nofile = 512
	e.edgeExtra = "  read_header_timeout = \"2m\"\n" // flood connections stay
	e.writeConfig()
	e.start()
	addr := strings.TrimPrefix(e.edgeURL, "http://")

	const flood = 1200 // well past 512
	conns := make([]net.Conn, 0, flood)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < flood; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	waitFor(t, 15*time.Second, "the edge to reach its connection cap", func() bool {
		return strings.Contains(e.logs.String(), "edge connection cap reached")
	})

	before := pids(e.status(), "ready") // the control API answers
	if len(before) == 0 {
		t.Fatal("no ready instance")
	}
	if err := syscall.Kill(before[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the killed workload to be restarted", func() bool {
		ready := pids(e.status(), "ready")
		if len(ready) != len(before) {
			return false
		}
		for _, p := range ready {
			if p == before[0] {
				return false
			}
		}
		return true
	})
	if strings.Contains(e.logs.String(), "too many open files") {
		t.Fatalf("the mesh ran out of descriptors:\n%s", e.logs.String())
	}

	for _, c := range conns {
		c.Close()
	}
	conns = conns[:0]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.edgeURL+"/billing/hello", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("edge after the flood: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("edge after the flood: %s", resp.Status)
	}
}
