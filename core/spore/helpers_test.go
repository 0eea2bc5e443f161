package spore

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// seedKey returns a deterministic key whose seed is 32 copies of b.
func seedKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func baseManifest() Manifest {
	return Manifest{
		Identity:  Identity{Name: "hello", Version: "1.0.0"},
		Runtime:   Runtime{Args: []string{"-v"}, Env: map[string]string{"MODE": "test"}},
		Resources: Resources{Nutrients: Nutrients{CPUMilli: 100, MemoryMB: 32}},
		SLO:       SLO{P99BudgetMS: 20},
		Security:  Security{LSMProfile: "default"},
	}
}

// signedManifestJSON builds the manifest.json bytes for bin, signed by key.
// before runs ahead of signing, after runs once the signature is in place
// (to tamper with a signed manifest).
func signedManifestJSON(t testing.TB, key ed25519.PrivateKey, bin []byte, before, after func(*Manifest)) []byte {
	t.Helper()
	m := baseManifest()
	if err := m.prepare(); err != nil {
		t.Fatal(err)
	}
	m.Integrity = Integrity{
		BinarySHA256: sha256Hex(bin),
		PublicKey:    FormatPublicKey(pubOf(key)),
		CreatedAt:    "2026-01-02T03:04:05Z",
	}
	if before != nil {
		before(&m)
	}
	// Sign whatever the manifest holds, valid or not, so that crafted
	// spores reach the check they are meant for.
	h := sha256.New()
	h.Write(canonicalBytes(m))
	h.Write([]byte(m.Integrity.BinarySHA256))
	m.Integrity.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, h.Sum(nil)))
	if after != nil {
		after(&m)
	}
	b, err := encodePretty(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// zentry is one entry of a hand-made zip. With raw set, data is written as
// already-compressed bytes and the header sizes and CRC are taken as given,
// so headers can lie.
type zentry struct {
	name   string
	data   []byte
	mode   fs.FileMode
	method uint16
	raw    bool
	crc    uint32
	usize  uint64
}

func buildZip(t testing.TB, entries []zentry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: e.method, Modified: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h.SetMode(mode)
		if e.raw {
			h.CRC32 = e.crc
			h.CompressedSize64 = uint64(len(e.data))
			h.UncompressedSize64 = e.usize
			w, err := zw.CreateRaw(h)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(e.data); err != nil {
				t.Fatal(err)
			}
			continue
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func deflate(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(b)
	fw.Close()
	return buf.Bytes()
}

func crcOf(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func dirEntries(t testing.TB, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range des {
		names = append(names, d.Name())
	}
	return names
}

// heapSampler records the peak HeapInuse while it runs.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup
}

func startHeapSampler(every time.Duration) *heapSampler {
	s := &heapSampler{stop: make(chan struct{})}
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		for {
			old := s.peak.Load()
			if ms.HeapInuse <= old || s.peak.CompareAndSwap(old, ms.HeapInuse) {
				return
			}
		}
	}
	sample()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-s.stop:
				sample()
				return
			case <-tk.C:
				sample()
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak HeapInuse in bytes.
func (s *heapSampler) Stop() uint64 {
	close(s.stop)
	s.wg.Wait()
	return s.peak.Load()
}
