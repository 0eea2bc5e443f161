package spore

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestLargeBinaryBoundedHeap packs, verifies and extracts a 256 MiB (sparse)
// binary and checks that the heap never grows anywhere near its size.
func TestLargeBinaryBoundedHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~768 MiB to disk; skipped with -short")
	}
	const size = 256 << 20
	const limit = 64 << 20
	dir := t.TempDir()
	bin := filepath.Join(dir, "big")
	f, err := os.Create(bin)
	if err != nil {
		t.Fatal(err)
	}
	// A little real data at both ends, a hole in the middle.
	head := make([]byte, 1<<20)
	rand.Read(head)
	f.Write(head)
	if _, err := f.WriteAt(head, size-int64(len(head))); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	key := seedKey(5)
	trusted := []ed25519.PublicKey{pubOf(key)}

	runtime.GC()
	s := startHeapSampler(time.Millisecond)
	out := filepath.Join(dir, "big.spore")
	m, err := PackFile(out, bin, baseManifest(), key)
	if err != nil {
		s.Stop()
		t.Fatal(err)
	}
	if _, err := Verify(out, trusted); err != nil {
		s.Stop()
		t.Fatal(err)
	}
	target := filepath.Join(dir, "x")
	if _, err := Extract(out, trusted, target); err != nil {
		s.Stop()
		t.Fatal(err)
	}
	peak := s.Stop()
	t.Logf("binary %d MiB, peak HeapInuse %.1f MiB", size>>20, float64(peak)/(1<<20))
	if peak > limit {
		t.Fatalf("peak HeapInuse %d bytes, want < %d", peak, limit)
	}
	st, err := os.Stat(filepath.Join(target, BinaryEntry))
	if err != nil || st.Size() != size {
		t.Fatalf("extracted binary: %v, %v", st, err)
	}
	if m.Integrity.BinarySHA256 == "" {
		t.Fatal("no digest")
	}
}
