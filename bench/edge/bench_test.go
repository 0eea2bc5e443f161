package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/pluginhost"
)

// TestMain lets the test binary stand in for the bench binary: the bench
// re-executes itself as the Go proxies and as their balancer plugin.
func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == pluginhost.ServeArg {
		if err := pluginhost.ServeBundled(os.Args[2], os.Args[3]); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	if len(os.Args) > 1 && os.Args[1] == "proxy" {
		if err := proxyMain(os.Args[2:]); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	if len(os.Args) > 1 && os.Args[1] == "paced" {
		if err := pacedMain(os.Args[2:]); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestBenchEndToEnd runs one short round of the tiny scenario against the
// workload, the baseline, the edge and whichever of nginx and HAProxy are
// installed, and reads the table it writes.
func TestBenchEndToEnd(t *testing.T) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk is not installed (make bench-edge installs it)")
	}
	dir := t.TempDir()
	hello := filepath.Join(dir, "hello")
	if out, err := exec.Command("go", "build", "-o", hello, "../../workloads/hello").CombinedOutput(); err != nil {
		t.Fatalf("build hello: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "results.txt")
	c := config{
		duration: time.Second, rounds: 1, concurrency: 4, threads: 2, out: out, hello: hello, wrk: wrk,
		skip:      map[string]bool{"edge-ll": true, "caddy": true},
		scenarios: []string{"tiny"}, maxOther: 0.1, maxSteal: 0.02, rate: 200,
	}
	if err := bench(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	table := string(b)
	t.Logf("\n%s", table)
	keys := []string{"a", "b", "c"}
	for _, x := range extProxies {
		if _, ok := lookBin(x.bins); ok && x.name != "caddy" {
			keys = append(keys, x.key)
		}
	}
	for _, k := range keys {
		row := regexp.MustCompile(`(?m)^` + k + ` +\S.* +\d+ +\d+-\d+ +\d+us +\d+us +[\d.]+us +[\d.]+[ *] +[\d.]+ +0$`)
		if !row.MatchString(table) {
			t.Errorf("no measured row for %s", k)
		}
	}
	for _, want := range []string{"## tiny:", "req/s vs baseline", "processes counted: a: hello;", "c: edge.test", "# machine: ", "## moderate: 200 req/s", "bar (c) p99 added"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^(quiet|LOADED: numbers unreliable)`).MatchString(table) {
		t.Error("the scenario says neither quiet nor LOADED")
	}
}
