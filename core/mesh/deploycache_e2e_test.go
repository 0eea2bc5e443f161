package mesh_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/controladdr"
)

// repoBlob is the repo file of digest in e's mesh.
func (e *env) repoBlob(digest string) string {
	return filepath.Join(e.dir, "repo", strings.TrimPrefix(digest, "sha256:")+".spore")
}

// TestDeployRechecksAChangedRepoFile deploys a digest (verified and
// remembered), then corrupts its repo file in place, keeping its size and
// modification time: the next deploy of that digest must notice and refuse
// it rather than trust the earlier verdict.
func TestDeployRechecksAChangedRepoFile(t *testing.T) {
	e := newEnv(t)
	e.start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := e.client()
	d1 := e.status().Apps[0].Digest
	base, hc, err := controladdr.Parse("unix://" + filepath.Join(e.dir, "control.sock"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		// The answer says the server's time for the call.
		if ms, err := timedDeploy(ctx, hc, base, "billing", d1); err != nil || ms <= 0 {
			t.Fatalf("deploy %d of %s: %v, server time %v ms", i, d1, err, ms)
		}
	}

	blob := e.repoBlob(d1)
	fi, err := os.Stat(blob)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff // inside the stored binary
	f, err := os.OpenFile(blob, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(blob, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	_, err = c.Deploy(ctx, "billing", d1)
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("deploy of a corrupted repo file: err = %v, want a refusal", err)
	}
}

// BenchmarkDeployVerified measures the deploy call for a digest the mesh
// has already verified (the one its plan names, so no agent has work to
// do), one call at a time and 200 at once, over the control socket. It
// reports the round trip and the server's own time for the call, from the
// Server-Timing header of the answer. The bars are ≤ 1 ms of server time
// per call and ≤ 1 s for the 200.
func BenchmarkDeployVerified(b *testing.B) {
	e := newEnv(b)
	e.start()
	defer e.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := e.client()
	d1 := e.status().Apps[0].Digest
	if _, err := c.Deploy(ctx, "billing", d1); err != nil {
		b.Fatal(err)
	}
	base, hc, err := controladdr.Parse("unix://" + filepath.Join(e.dir, "control.sock"))
	if err != nil {
		b.Fatal(err)
	}
	const serial = 50
	var one, server []float64
	var burst []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := 0; k < serial; k++ {
			t0 := time.Now()
			srv, err := timedDeploy(ctx, hc, base, "billing", d1)
			if err != nil {
				b.Fatal(err)
			}
			one = append(one, float64(time.Since(t0).Microseconds())/1000)
			server = append(server, srv)
		}
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for k := 0; k < 200; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.Deploy(ctx, "billing", d1); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		burst = append(burst, float64(time.Since(t0).Microseconds())/1000)
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	sort.Float64s(one)
	sort.Float64s(server)
	sort.Float64s(burst)
	b.ReportMetric(one[len(one)/2], "deploy-p50-ms")
	b.ReportMetric(one[len(one)*99/100], "deploy-p99-ms")
	b.ReportMetric(server[len(server)/2], "server-p50-ms")
	b.ReportMetric(server[len(server)*99/100], "server-p99-ms")
	b.ReportMetric(burst[len(burst)/2], "deploy200-ms")
}

// timedDeploy deploys digest to app through the control API at base and
// returns the server's time for the call in milliseconds, from the
// answer's Server-Timing header.
func timedDeploy(ctx context.Context, hc *http.Client, base, app, digest string) (float64, error) {
	body := strings.NewReader(fmt.Sprintf(`{"app":%q,"digest":%q}`, app, digest))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/deploy", body)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("deploy: %s", resp.Status)
	}
	st := resp.Header.Get("Server-Timing")
	v, ok := strings.CutPrefix(st, "deploy;dur=")
	if !ok {
		return 0, fmt.Errorf("deploy answer has Server-Timing %q", st)
	}
	return strconv.ParseFloat(v, 64)
}

// TestDeployAfterTrustWithdrawn deploys a digest (verified and remembered),
// then reloads trusted keys that no longer include its signer: the next
// deploy of that digest is refused.
func TestDeployAfterTrustWithdrawn(t *testing.T) {
	e := newEnv(t)
	e.start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := e.client()
	d1 := e.status().Apps[0].Digest
	if _, err := c.Deploy(ctx, "billing", d1); err != nil {
		t.Fatal(err)
	}
	runCLI(t, "keygen", "-out", filepath.Join(e.dir, "other"))
	e.rewriteConfig(`trusted_keys = ["dev.pub"]`, `trusted_keys = ["other.pub"]`)
	runCLI(t, "reload", "-config", e.cfgPath)
	_, err := c.Deploy(ctx, "billing", d1)
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("deploy after the signer's key was withdrawn: err = %v, want a refusal", err)
	}
}
