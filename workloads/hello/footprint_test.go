package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/internal/testutil"
)

// maxAnonKiB bounds the anonymous memory (heap, stacks, runtime data: what
// no other instance can share) of an idle hello that served a few requests.
// The Go runtime and net/http need about 1 MiB; a buffer every instance
// carries whether asked for it or not shows up here.
const maxAnonKiB = 1536

// TestIdleFootprint runs the hello binary, has it answer /health and
// /hello, and reads its anonymous memory from /proc/PID/smaps_rollup. The
// runtime's per-processor caches grow with GOMAXPROCS, so it is pinned to
// the 2 of the machines the bound was measured on.
func TestIdleFootprint(t *testing.T) {
	if _, err := os.Stat("/proc/self/smaps_rollup"); err != nil {
		t.Skipf("no smaps_rollup here: %v", err)
	}
	bin, err := testutil.Build(t.TempDir(), "./workloads/hello", "hello")
	if err != nil {
		t.Fatal(err)
	}
	port := testutil.FreePort(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "HELLO_VERSION=v1", "GOMAXPROCS=2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hello never answered /health: %v", err)
		}
		time.Sleep(5 * time.Millisecond) // polling a process that is starting
	}
	for range 20 {
		resp, err := http.Get(base + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	anon := -1
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "Anonymous:"); ok {
			anon, err = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("smaps_rollup line %q: %v", line, err)
			}
		}
	}
	if anon < 0 {
		t.Fatalf("no Anonymous line in smaps_rollup:\n%s", raw)
	}
	t.Logf("anonymous memory: %d KiB", anon)
	if anon > maxAnonKiB {
		t.Fatalf("idle hello holds %d KiB of anonymous memory, want at most %d", anon, maxAnonKiB)
	}
}
