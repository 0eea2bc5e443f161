// Command cluster is the clustered fabric's benchmark: real `mesh`
// processes with their roles apart on several hosts, a real three-member
// etcd cluster, and beside them one `mesh run` on the embedded fabric, in
// one run. Hosts are network namespaces on a private bridge when the bench
// runs as root with ip(8) and nsenter(1) (package internal/netnstest);
// otherwise every host is an address of the loopback net (127.0.0.x), and
// the table says so and why.
//
// Scenarios (-scenarios):
//
//	plan      plan-to-ready: a deploy of a new version of an app with one
//	          instance per agent, timed from the deploy call (the plan is
//	          published) until every new instance is ready as the control
//	          process sees it and its endpoint is in the edge's routing
//	          table; on the etcd fabric (one `mesh agent` per agent host,
//	          control and `mesh edge` on another) and on the embedded one
//	          (`mesh run` with as many in-process agents), in turn.
//	failover  every process of an agent host running an instance of an
//	          app (min = max = 2 over three hosts) SIGKILLed: time until its
//	          endpoints are gone and until the app is back at min on the
//	          other hosts, both as the edge routes.
//	scale     1,000 apps and 50 agents, store-level (see runScale): the
//	          time until every plan is applied, and etcd's write and watch
//	          load from its own /metrics, with rates per second.
//
// Each figure is the median and range over -rounds rounds. Around every
// measurement the bench reads the CPU that processes outside its own tree
// (etcd, every mesh process and workload are in it) used and the CPU the
// hypervisor stole; above -max-other-cpu or -max-steal the measurement
// counts as loaded, and the scenario says LOADED instead of passing its
// numbers off as sound.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mycelium-mesh/mesh/internal/etcdtest"
)

const etcdVersion = etcdtest.PinnedVersion

// config of one run.
type config struct {
	hosts        string // auto, netns or loopback
	agentHosts   int
	rounds       int
	leaseTTL     time.Duration
	scenarios    map[string]bool
	scaleApps    int
	scaleAgents  int
	scaleRounds  int
	scaleSteady  time.Duration
	scaleLease   time.Duration
	scaleRetry   time.Duration
	scaleTimeout time.Duration
	maxOther     float64
	maxSteal     float64
	mesh, hello  string
	out          string
}

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	var c config
	var scenarios string
	fs := flag.NewFlagSet("clusterbench", flag.ContinueOnError)
	fs.StringVar(&c.hosts, "hosts", "auto", "hosts as network namespaces (netns), loopback addresses (loopback), or netns when possible (auto)")
	fs.IntVar(&c.agentHosts, "agent-hosts", 3, "agent hosts of the etcd fabric, and in-process agents of the embedded mesh (at least 3 for failover)")
	fs.IntVar(&c.rounds, "rounds", 5, "rounds of the plan and failover scenarios")
	fs.DurationVar(&c.leaseTTL, "lease-ttl", 2*time.Second, "the fabric's lease_ttl (whole seconds, at least 1s)")
	fs.StringVar(&scenarios, "scenarios", "plan,failover,scale", "comma-separated: plan, failover, scale")
	fs.IntVar(&c.scaleApps, "scale-apps", 1000, "apps of the scale scenario")
	fs.IntVar(&c.scaleAgents, "scale-agents", 50, "agents of the scale scenario")
	fs.IntVar(&c.scaleRounds, "scale-rounds", 1, "rounds of the scale scenario")
	fs.DurationVar(&c.scaleSteady, "scale-steady", 5*time.Second, "how long etcd's load is measured once every plan is applied")
	fs.DurationVar(&c.scaleLease, "scale-lease-ttl", 5*time.Second, "lease TTL of the scale scenario's Stores (the product's default lease_ttl)")
	fs.DurationVar(&c.scaleRetry, "scale-retry", time.Second, "how often a refused agent claims again in the scale scenario (core/agent: 1s; 0: never)")
	fs.DurationVar(&c.scaleTimeout, "scale-timeout", 10*time.Minute, "longest wait for every plan to be applied")
	fs.Float64Var(&c.maxOther, "max-other-cpu", 0.1, "cores other processes may use during a measurement before it counts as LOADED")
	fs.Float64Var(&c.maxSteal, "max-steal", 0.02, "share of CPU time the hypervisor may steal during a measurement before it counts as LOADED")
	fs.StringVar(&c.mesh, "mesh", "", "mesh binary (default: go build ./cmd/mesh)")
	fs.StringVar(&c.hello, "hello", "", "hello workload binary (default: go build ./workloads/hello)")
	fs.StringVar(&c.out, "out", "", "also write the table to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c.scenarios = map[string]bool{}
	for _, s := range strings.Split(scenarios, ",") {
		switch s = strings.TrimSpace(s); s {
		case "":
		case "plan", "failover", "scale":
			c.scenarios[s] = true
		default:
			fmt.Fprintf(os.Stderr, "clusterbench: unknown scenario %q (plan, failover, scale)\n", s)
			return 2
		}
	}
	if c.scenarios["failover"] && c.agentHosts < 3 {
		fmt.Fprintln(os.Stderr, "clusterbench: failover needs -agent-hosts 3 or more")
		return 2
	}
	c.rounds, c.scaleRounds = max(c.rounds, 1), max(c.scaleRounds, 1)
	c.leaseTTL = max(c.leaseTTL.Round(time.Second), time.Second)
	command := "clusterbench " + strings.Join(args, " ")
	if err := bench(context.Background(), c, strings.TrimSpace(command)); err != nil {
		fmt.Fprintln(os.Stderr, "clusterbench:", err)
		return 1
	}
	return 0
}

// bench runs the scenarios of c and prints (and writes) the table.
func bench(ctx context.Context, c config, command string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tmp, err := os.MkdirTemp("", "clusterbench-")
	if err != nil {
		return fmt.Errorf("scratch directory: %w", err)
	}
	r := newRunner(tmp)
	keep := false
	defer func() {
		r.cleanup()
		if !keep {
			os.RemoveAll(tmp)
		}
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	for _, b := range []struct {
		p         *string
		pkg, name string
	}{{&c.mesh, "./cmd/mesh", "mesh"}, {&c.hello, "./workloads/hello", "hello"}} {
		if *b.p == "" {
			out := filepath.Join(tmp, b.name)
			cmd := exec.Command("go", "build", "-o", out, b.pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("build %s (run from the module root, or pass -%s): %w", b.pkg, b.name, err)
			}
			*b.p = out
		} else if *b.p, err = filepath.Abs(*b.p); err != nil {
			return err
		}
	}

	rep := &report{c: c, command: command, started: time.Now()}
	q := markCPU()
	time.Sleep(time.Second)
	rep.quiet = between(q, markCPU())
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		rep.load1 = strings.Join(strings.Fields(string(b))[:3], " ")
	}

	fmt.Fprintln(os.Stderr, "==> starting etcd, the roles apart and the embedded mesh")
	s, err := newSetup(ctx, r, c)
	if err != nil {
		keep = true
		return fmt.Errorf("%w (logs kept in %s)", err, tmp)
	}
	rep.s = s
	fmt.Fprintf(os.Stderr, "==> hosts: %s\n", s.net.mode)
	if c.scenarios["plan"] {
		fmt.Fprintln(os.Stderr, "==> plan-to-ready")
		if rep.plan, err = runPlan(ctx, s); err != nil {
			keep = true
			return fmt.Errorf("plan-to-ready: %w (logs kept in %s)", err, tmp)
		}
		rep.all = merge(rep.all, rep.plan.v)
	}
	if c.scenarios["failover"] {
		fmt.Fprintln(os.Stderr, "==> failover")
		rep.failover = runFailover(ctx, s)
		rep.all = merge(rep.all, rep.failover.v)
	}
	if c.scenarios["scale"] {
		// The mesh processes go first: the scale scenario loads etcd alone.
		for _, p := range append([]*proc{s.ctl, s.edge, s.emb}, s.agents...) {
			p.stop(20 * time.Second)
		}
		for i := range c.scaleRounds {
			fmt.Fprintf(os.Stderr, "==> scale round %d: %d apps, %d agents\n", i+1, c.scaleApps, c.scaleAgents)
			sr, err := runScale(ctx, s, i)
			if err != nil {
				rep.scaleErr = append(rep.scaleErr, err.Error())
				fmt.Fprintln(os.Stderr, "scale:", err)
				continue
			}
			fmt.Fprintf(os.Stderr, "    applied in %s\n", ms(sr.applied))
			rep.scale = append(rep.scale, sr)
			rep.all.add(sr.u, c)
		}
	}
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	table := rep.render()
	fmt.Print(table)
	if c.out != "" {
		if err := os.WriteFile(c.out, []byte(table), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", c.out, err)
		}
	}
	return nil
}

func merge(a, b verdict) verdict {
	return verdict{n: a.n + b.n, loaded: a.loaded + b.loaded, worst: max(a.worst, b.worst), maxSteal: max(a.maxSteal, b.maxSteal)}
}
