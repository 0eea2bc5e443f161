package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/plugins/healthhttp"
	"github.com/mycelium-mesh/mesh/sdk"
)

// BenchmarkDeploy measures plan published → endpoint registered on one
// node, for a digest never seen on the node (cold: fetch, verify, extract,
// launch, health) and for one already extracted there (warm). Each deploy
// after the first is a blue/green switch. It reports p50 and p99 in ms and
// p50 over the spawn floor measured in the same run, with each instance in
// its own cgroup (where available) and, for comparison, in a process group
// only.
func BenchmarkDeploy(b *testing.B) {
	for _, c := range []struct {
		cold, pgroup bool
	}{{true, false}, {false, false}, {true, true}, {false, true}} {
		cold := c.cold
		name := "warm"
		if cold {
			name = "cold"
		}
		if c.pgroup {
			name += "-process-group"
		}
		b.Run(name, func(b *testing.B) {
			floor := percentile(spawnSamples(b, 20), 50)
			e := newEnv(b)
			a := e.startAgent("n1", func(o *Options) { o.Warmup, o.Grace, o.NoCgroups = time.Millisecond, time.Second, c.pgroup })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			watch := e.fab.WatchEndpoints(ctx)
			var warm []string
			if !cold {
				warm = []string{e.spore("w1", nil), e.spore("w2", nil)}
			}
			current := ""
			deploy := func(d string) time.Duration {
				start := time.Now()
				e.publish(fabric.Plan{Digest: d})
				for s := range watch {
					if ep, ok := findNode(s.Apps["billing"], "n1"); ok && ep.URL != current {
						current = ep.URL
						break
					}
				}
				return time.Since(start)
			}
			settle := func() {
				waitFor(b, 10*time.Second, "one live instance", func() bool {
					live := 0
					for _, s := range a.Instances() {
						if s.State != StateStopped && s.State != StateFailed {
							live++
						}
					}
					return live <= 1
				})
			}
			if !cold {
				// Extract both digests before measuring.
				deploy(warm[0])
				settle()
				deploy(warm[1])
				settle()
			}
			samples := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				var d string
				if cold {
					d = e.spore(fmt.Sprintf("c%d", i), nil)
				} else {
					d = warm[i%2]
				}
				settle()
				b.StartTimer()
				samples = append(samples, deploy(d))
			}
			b.StopTimer()
			p50 := percentile(samples, 50)
			b.ReportMetric(ms(p50), "p50-ms")
			b.ReportMetric(ms(percentile(samples, 99)), "p99-ms")
			b.ReportMetric(float64(p50)/float64(floor), "p50/floor")
		})
	}
}

// BenchmarkSpawnFloor is the baseline of BenchmarkDeploy: exec the workload
// directly and poll its health the way the agent does, until the first
// healthy answer.
func BenchmarkSpawnFloor(b *testing.B) {
	samples := spawnSamples(b, b.N)
	b.ReportMetric(ms(percentile(samples, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(samples, 99)), "p99-ms")
}

func spawnSamples(b *testing.B, n int) []time.Duration {
	hc := healthhttp.New()
	out := make([]time.Duration, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		start := time.Now()
		cmd := exec.Command(helloBin)
		cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		url := "http://127.0.0.1:" + strconv.Itoa(port)
		delay := healthFirstPoll
		for {
			res, err := hc.Check(context.Background(), sdk.HealthCheck{URL: url, Path: "/health", Timeout: time.Second})
			if err == nil && res.Healthy {
				break
			}
			if time.Since(start) > 10*time.Second {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				_ = cmd.Wait()
				b.Fatal("workload not healthy within 10s")
			}
			time.Sleep(delay)
			delay = min(delay*2, healthMaxPoll)
		}
		out = append(out, time.Since(start))
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}
	return out
}

func percentile(samples []time.Duration, p int) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(i-1, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
