package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/internal/testutil"
)

// TestBenchTinyRound runs one tiny round of every scenario (3 apps and 2
// agents in the scale one) with real mesh processes and a real etcd
// cluster, on network namespaces when the machine allows them, and then
// the plan scenario on loopback addresses, and reads the tables they
// write, so that the bench cannot rot. It asserts what the tables hold,
// never how fast anything was.
func TestBenchTinyRound(t *testing.T) {
	dir := t.TempDir()
	meshBin, err := testutil.Build(dir, "./cmd/mesh", "mesh")
	if err != nil {
		t.Fatal(err)
	}
	hello, err := testutil.Build(dir, "./workloads/hello", "hello")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hosts     string
		scenarios []string
		want      []string
	}{
		{"auto", []string{"plan", "failover", "scale"}, []string{
			"## plan-to-ready:", "## failover:", "## scale: 3 apps (min = max = 1) and 2 agents, store-level",
			"claims in the last round: 3 won,", "when applied: 4 watchers on 4 watch streams",
		}},
		{"loopback", []string{"plan"}, []string{"# hosts: loopback addresses, not network namespaces (asked for (-hosts loopback))", "## plan-to-ready:"}},
	} {
		t.Run(tc.hosts, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "results.txt")
			c := config{
				hosts: tc.hosts, agentHosts: 3, rounds: 1, leaseTTL: time.Second, scenarios: map[string]bool{},
				scaleApps: 3, scaleAgents: 2, scaleRounds: 1, scaleSteady: 200 * time.Millisecond, scaleLease: time.Second, scaleRetry: time.Second, scaleTimeout: time.Minute,
				maxOther: 0.1, maxSteal: 0.02, mesh: meshBin, hello: hello, out: out,
			}
			for _, s := range tc.scenarios {
				c.scenarios[s] = true
			}
			if err := bench(context.Background(), c, "clusterbench -test"); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			table := string(b)
			t.Logf("\n%s", table)
			for _, w := range tc.want {
				if !strings.Contains(table, w) {
					t.Errorf("table lacks %q", w)
				}
			}
			if strings.Contains(table, "rounds failed") || regexp.MustCompile(`(?m)\s{2,}failed`).MatchString(table) {
				t.Error("a measurement failed")
			}
			rows := []string{"etcd: every new endpoint in the edge's table", "embedded: every new endpoint in the edge's table"}
			if c.scenarios["failover"] {
				rows = append(rows, "its endpoints gone", "the app back at min elsewhere")
			}
			if c.scenarios["scale"] {
				rows = append(rows, "every plan applied")
			}
			for _, r := range rows {
				re := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(r) + `.* \d+(\.\d+)? m?s +\d+(\.\d+)? m?s - \d+(\.\d+)? m?s +1$`)
				if !re.MatchString(table) {
					t.Errorf("no measured row %q", r)
				}
			}
			if !regexp.MustCompile(`(?m)^# machine: (quiet|LOADED: numbers unreliable)`).MatchString(table) {
				t.Error("the table says neither quiet nor LOADED")
			}
		})
	}
}
