package mesh_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
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
	for i := 0; i < 2; i++ {
		if _, err := c.Deploy(ctx, "billing", d1); err != nil {
			t.Fatalf("deploy %d of %s: %v", i, d1, err)
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
// do), one call at a time and 200 at once, as round trips over the control
// socket: an upper bound on the server's time. The bars are ≤ 1 ms per call
// and ≤ 1 s for the 200.
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
	const serial = 50
	var one []float64
	var burst []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := 0; k < serial; k++ {
			t0 := time.Now()
			if _, err := c.Deploy(ctx, "billing", d1); err != nil {
				b.Fatal(err)
			}
			one = append(one, float64(time.Since(t0).Microseconds())/1000)
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
	sort.Float64s(burst)
	b.ReportMetric(one[len(one)/2], "deploy-p50-ms")
	b.ReportMetric(one[len(one)*99/100], "deploy-p99-ms")
	b.ReportMetric(burst[len(burst)/2], "deploy200-ms")
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
