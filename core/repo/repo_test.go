package repo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// dirBackend is a small but real Backend storing blobs in a directory. With
// corrupt set it flips one byte of everything it returns.
type dirBackend struct {
	dir     string
	corrupt bool
	puts    atomic.Int32
	gets    atomic.Int32
}

func (b *dirBackend) file(digest string) (string, error) {
	h, err := ParseDigest(digest)
	if err != nil {
		return "", err
	}
	return filepath.Join(b.dir, h), nil
}

func (b *dirBackend) Put(_ context.Context, digest string, r io.Reader) error {
	p, err := b.file(digest)
	if err != nil {
		return err
	}
	b.puts.Add(1)
	f, err := os.CreateTemp(b.dir, "in-*")
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}

func (b *dirBackend) Get(_ context.Context, digest string) (io.ReadCloser, bool, error) {
	p, err := b.file(digest)
	if err != nil {
		return nil, false, err
	}
	b.gets.Add(1)
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if b.corrupt && len(data) > 0 {
		data[len(data)/2] ^= 0xff
	}
	return io.NopCloser(bytes.NewReader(data)), true, nil
}

func (b *dirBackend) Has(_ context.Context, digest string) (bool, error) {
	p, err := b.file(digest)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// failingBackend answers every call with an error.
type failingBackend struct{}

var errBackendDown = errors.New("backend down")

func (failingBackend) Put(context.Context, string, io.Reader) error { return errBackendDown }
func (failingBackend) Get(context.Context, string) (io.ReadCloser, bool, error) {
	return nil, false, errBackendDown
}
func (failingBackend) Has(context.Context, string) (bool, error) { return false, errBackendDown }

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func digestOf(data []byte) string {
	s := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(s[:])
}

// storedFiles lists every entry of dir, temporary files included.
func storedFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func openRepo(t *testing.T, opts ...Option) *Repo {
	t.Helper()
	r, err := Open(filepath.Join(t.TempDir(), "repo", "nested"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestOpenCreatesDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		t.Fatalf("repo directory not created: %v", err)
	}
	if st.Mode().Perm() != 0o755&^currentUmask() {
		t.Errorf("mode %v, want %v", st.Mode().Perm(), os.FileMode(0o755&^currentUmask()))
	}
	if !filepath.IsAbs(r.Dir()) {
		t.Errorf("Dir() = %q, want absolute", r.Dir())
	}

	file := writeFile(t, t.TempDir(), "f", []byte("x"))
	if _, err := Open(file); err == nil {
		t.Error("Open on a regular file succeeded")
	}
	if _, err := Open(""); err == nil {
		t.Error("Open with empty dir succeeded")
	}
}

func currentUmask() os.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return os.FileMode(m)
}

func TestPutIdempotent(t *testing.T) {
	r := openRepo(t)
	data := []byte("spore bytes: the same twice")
	src := writeFile(t, t.TempDir(), "a.spore", data)
	copyOf := writeFile(t, t.TempDir(), "b.spore", data)

	d1, err := r.Put(src)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := r.Put(copyOf)
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 || d1 != digestOf(data) {
		t.Fatalf("digests %s and %s, want both %s", d1, d2, digestOf(data))
	}
	names := storedFiles(t, r.Dir())
	want := strings.TrimPrefix(d1, "sha256:") + ".spore"
	if len(names) != 1 || names[0] != want {
		t.Fatalf("repo holds %v, want exactly [%s]", names, want)
	}
	p, err := r.Path(d1)
	if err != nil {
		t.Fatal(err)
	}
	if p != filepath.Join(r.Dir(), want) {
		t.Errorf("Path = %s", p)
	}
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored bytes differ: %v", err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("stored mode %v, want 0644", st.Mode().Perm())
	}
}

func TestPutErrors(t *testing.T) {
	r := openRepo(t)
	if _, err := r.Put(filepath.Join(t.TempDir(), "missing.spore")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want ErrNotExist", err)
	}
	if _, err := r.Put(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.PutReader(ctx, strings.NewReader("abc")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: err = %v", err)
	}
	if names := storedFiles(t, r.Dir()); len(names) != 0 {
		t.Errorf("failed puts left %v", names)
	}
}

func TestPutConcurrent(t *testing.T) {
	r := openRepo(t)
	src := t.TempDir()
	const distinct = 8
	const copies = 6
	var files []string
	var want []string
	for i := 0; i < distinct; i++ {
		data := bytes.Repeat([]byte(fmt.Sprintf("blob-%d;", i)), 20000+i*1000)
		files = append(files, writeFile(t, src, fmt.Sprintf("f%d.spore", i), data))
		want = append(want, digestOf(data))
	}
	var wg sync.WaitGroup
	got := make([][]string, distinct)
	errs := make(chan error, distinct*copies)
	for i := range files {
		got[i] = make([]string, copies)
		for c := 0; c < copies; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, err := r.Put(files[i])
				if err != nil {
					errs <- err
					return
				}
				got[i][c] = d
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range files {
		for c := 0; c < copies; c++ {
			if got[i][c] != want[i] {
				t.Errorf("file %d copy %d: digest %s, want %s", i, c, got[i][c], want[i])
			}
		}
	}
	names := storedFiles(t, r.Dir())
	if len(names) != distinct {
		t.Fatalf("repo holds %d entries (%v), want %d", len(names), names, distinct)
	}
	entries, err := r.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p, err := r.Path(e.Digest)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if digestOf(data) != e.Digest {
			t.Errorf("%s holds bytes hashing to %s", e.Digest, digestOf(data))
		}
	}
}

func TestParseDigest(t *testing.T) {
	lower := strings.Repeat("0123456789abcdef", 4)
	upper := strings.ToUpper(lower)
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{in: "sha256:" + lower, want: lower},
		{in: lower, want: lower},
		{in: "sha256:" + upper, want: lower},
		{in: upper[:10] + lower[10:], want: lower},
		{in: "", wantErr: "want 64 hex digits, got 0"},
		{in: "sha256:", wantErr: "want 64 hex digits, got 0"},
		{in: "sha256:" + lower[:63], wantErr: "got 63"},
		{in: "sha256:" + lower + "0", wantErr: "got 65"},
		{in: "SHA256:" + lower, wantErr: "unsupported algorithm"},
		{in: "sha512:" + lower, wantErr: "unsupported algorithm \"sha512\""},
		{in: "md5:abc", wantErr: "unsupported algorithm"},
		{in: "sha256:" + lower[:62] + "zz", wantErr: "not a hex digit"},
		{in: " sha256:" + lower, wantErr: "unsupported algorithm"},
		{in: "sha256:" + lower[:63] + " ", wantErr: "not a hex digit"},
		{in: "../../../../etc/passwd", wantErr: "got 22"},
		{in: "sha256:../" + lower[:61], wantErr: "not a hex digit"},
		{in: "sha256:" + lower[:60] + "/../", wantErr: "not a hex digit"},
		{in: strings.Repeat("a", 63) + "\x00", wantErr: "not a hex digit"},
		{in: strings.Repeat("x", 500), wantErr: "..."},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.20q", tt.in), func(t *testing.T) {
			got, err := ParseDigest(tt.in)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrBadDigest) {
					t.Fatalf("err = %v, want ErrBadDigest", err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %q, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseDigest = %q, %v; want %q", got, err, tt.want)
			}
			norm, err := NormalizeDigest(tt.in)
			if err != nil || norm != "sha256:"+tt.want {
				t.Fatalf("NormalizeDigest = %q, %v", norm, err)
			}
		})
	}
}

func TestPathMalformedAndUnknown(t *testing.T) {
	r := openRepo(t)
	// A file sitting next to the repo must never be reachable through Path.
	outside := writeFile(t, filepath.Dir(r.Dir()), "secret", []byte("not a spore"))
	for _, d := range []string{
		"",
		"sha256:",
		"../secret",
		"sha256:../secret",
		outside,
		"sha256:" + strings.Repeat("g", 64),
		"sha1:" + strings.Repeat("a", 40),
		strings.Repeat("a", 64) + ".spore",
	} {
		p, err := r.Path(d)
		if !errors.Is(err, ErrBadDigest) {
			t.Errorf("Path(%q) = %q, %v; want ErrBadDigest", d, p, err)
		}
		if ok, err := r.Has(d); ok || !errors.Is(err, ErrBadDigest) {
			t.Errorf("Has(%q) = %v, %v; want ErrBadDigest", d, ok, err)
		}
	}

	unknown := "sha256:" + strings.Repeat("ab", 32)
	_, err := r.Path(unknown)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown digest: err = %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), unknown) {
		t.Errorf("error %q does not name the digest", err)
	}
	if ok, err := r.Has(unknown); ok || err != nil {
		t.Errorf("Has(unknown) = %v, %v", ok, err)
	}

	// Upper-case hex finds the same blob as lower-case.
	data := []byte("case")
	d, err := r.PutReader(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	p1, err := r.Path(d)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := r.Path(strings.ToUpper(strings.TrimPrefix(d, "sha256:")))
	if err != nil || p1 != p2 {
		t.Fatalf("upper-case lookup = %q, %v; want %q", p2, err, p1)
	}
}

func TestBackend(t *testing.T) {
	backend := &dirBackend{dir: t.TempDir()}
	publisher := openRepo(t, WithBackend(backend))
	data := bytes.Repeat([]byte("remote spore "), 50000)
	d, err := publisher.PutReader(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if backend.puts.Load() != 1 {
		t.Fatalf("backend saw %d puts, want 1", backend.puts.Load())
	}
	// A second Put of the same bytes does not push again.
	if _, err := publisher.PutReader(context.Background(), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if backend.puts.Load() != 1 {
		t.Fatalf("backend saw %d puts after re-put, want 1", backend.puts.Load())
	}

	// Another node with an empty local store fetches through the backend.
	node := openRepo(t, WithBackend(backend))
	if ok, _ := node.Has(d); ok {
		t.Fatal("fresh store already has the blob")
	}
	p, err := node.Path(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("fetched bytes differ (err %v)", err)
	}
	if filepath.Dir(p) != node.Dir() {
		t.Errorf("fetched blob at %s, outside the local store", p)
	}
	// The local store is the cache: a second Path does not ask the backend.
	gets := backend.gets.Load()
	if _, err := node.Path(d); err != nil {
		t.Fatal(err)
	}
	if backend.gets.Load() != gets {
		t.Error("second Path went to the backend again")
	}

	// Unknown everywhere.
	if _, err := node.Path(digestOf([]byte("nobody has this"))); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown digest with backend: err = %v, want ErrNotFound", err)
	}
}

func TestBackendCorruptRefused(t *testing.T) {
	store := t.TempDir()
	honest := &dirBackend{dir: store}
	publisher := openRepo(t, WithBackend(honest))
	d, err := publisher.PutReader(context.Background(), strings.NewReader(strings.Repeat("trust nothing ", 1000)))
	if err != nil {
		t.Fatal(err)
	}

	node := openRepo(t, WithBackend(&dirBackend{dir: store, corrupt: true}))
	p, err := node.Path(d)
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("corrupt backend: Path = %q, %v; want ErrDigestMismatch", p, err)
	}
	if names := storedFiles(t, node.Dir()); len(names) != 0 {
		t.Fatalf("refused blob left files behind: %v", names)
	}
	if ok, _ := node.Has(d); ok {
		t.Fatal("refused blob is visible")
	}
}

func TestBackendErrors(t *testing.T) {
	r := openRepo(t, WithBackend(failingBackend{}))
	if _, err := r.Path(digestOf([]byte("x"))); !errors.Is(err, errBackendDown) {
		t.Errorf("Path with a failing backend: err = %v", err)
	}
	_, err := r.PutReader(context.Background(), strings.NewReader("x"))
	if !errors.Is(err, errBackendDown) {
		t.Errorf("Put with a failing backend: err = %v", err)
	}
	// The local copy is still good and served.
	if _, err := r.Path(digestOf([]byte("x"))); err != nil {
		t.Errorf("local copy after failed push: %v", err)
	}
}

func TestList(t *testing.T) {
	r := openRepo(t)
	var want []string
	for i := 0; i < 3; i++ {
		d, err := r.PutReader(context.Background(), strings.NewReader(fmt.Sprint("blob", i)))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, d)
	}
	// Foreign files are not listed.
	writeFile(t, r.Dir(), "README", []byte("x"))
	writeFile(t, r.Dir(), strings.Repeat("A", 64)+".spore", []byte("x"))
	writeFile(t, r.Dir(), tempPrefix+"123", []byte("x"))

	got, err := r.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("List = %v, want %d entries", got, len(want))
	}
	seen := map[string]bool{}
	for i, e := range got {
		seen[e.Digest] = true
		if i > 0 && got[i-1].Digest >= e.Digest {
			t.Error("List not sorted")
		}
		if e.Size != int64(len("blob0")) {
			t.Errorf("%s size %d", e.Digest, e.Size)
		}
	}
	for _, d := range want {
		if !seen[d] {
			t.Errorf("List misses %s", d)
		}
	}
}

func TestOpenSweepsStaleTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	stale := writeFile(t, dir, tempPrefix+"old", []byte("partial"))
	fresh := writeFile(t, dir, tempPrefix+"new", []byte("partial"))
	other := writeFile(t, dir, "keep-me", []byte("x"))
	old := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(other, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Error("stale temporary file survived Open")
	}
	for _, p := range []string{fresh, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", filepath.Base(p), err)
		}
	}
}

// Crash test: a child process puts a large blob slowly and is SIGKILLed in
// the middle of the write.

const (
	crashDirEnv   = "MESH_REPO_CRASH_DIR"
	crashChunk    = 64 << 10
	crashChunks   = 512 // 32 MiB in total
	crashInterval = 5 * time.Millisecond
)

// crashPayload is the deterministic content the child writes.
func crashPayload() io.Reader {
	chunk := bytes.Repeat([]byte{0x5a}, crashChunk)
	rs := make([]io.Reader, crashChunks)
	for i := range rs {
		rs[i] = bytes.NewReader(chunk)
	}
	return io.MultiReader(rs...)
}

// slowReader sleeps before every read.
type slowReader struct {
	r     io.Reader
	delay time.Duration
}

func (s slowReader) Read(p []byte) (int, error) {
	time.Sleep(s.delay)
	if len(p) > crashChunk {
		p = p[:crashChunk]
	}
	return s.r.Read(p)
}

// TestHelperPutChild is the child side of TestPutCrashLeavesNoDigest; it does
// nothing unless started by it.
func TestHelperPutChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestPutCrashLeavesNoDigest")
	}
	r, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	d, err := r.PutReader(context.Background(), slowReader{r: crashPayload(), delay: crashInterval})
	// Reaching this point means the parent failed to kill us mid-write.
	fmt.Fprintln(os.Stderr, "child finished put:", d, err)
	os.Exit(4)
}

func TestPutCrashLeavesNoDigest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperPutChild$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	waited := false
	t.Cleanup(func() {
		if !waited {
			syscall.Kill(-pid, syscall.SIGKILL)
			cmd.Wait()
		}
	})

	// Wait until the child is well into the write: its temporary file holds
	// a few chunks but far from all of them.
	var tempName string
	deadline := time.Now().Add(30 * time.Second)
	for tempName == "" {
		if time.Now().After(deadline) {
			t.Fatalf("child never started writing; stderr: %s", stderr.String())
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), tempPrefix) {
				continue
			}
			if info, err := e.Info(); err == nil && info.Size() >= 4*crashChunk {
				tempName = e.Name()
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	waited = true
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed mid-write: %v; stderr: %s", err, stderr.String())
	}

	// Nothing is visible under any digest name; only the temporary file remains.
	for _, name := range storedFiles(t, dir) {
		if strings.HasSuffix(name, blobSuffix) {
			t.Errorf("crash left %s under a digest name", name)
		}
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if entries, err := r.List(); err != nil || len(entries) != 0 {
		t.Fatalf("List after crash = %v, %v; want empty", entries, err)
	}
	full, err := io.ReadAll(crashPayload())
	if err != nil {
		t.Fatal(err)
	}
	partial, err := os.ReadFile(filepath.Join(dir, tempName))
	if err != nil {
		t.Fatalf("temporary file vanished: %v", err)
	}
	if len(partial) >= len(full) {
		t.Fatalf("child wrote everything (%d bytes) before the kill", len(partial))
	}
	for _, d := range []string{digestOf(full), digestOf(partial)} {
		if _, err := r.Path(d); !errors.Is(err, ErrNotFound) {
			t.Errorf("Path(%s) after crash: %v, want ErrNotFound", d, err)
		}
	}

	// A fresh Put of the same content succeeds and is complete.
	d, err := r.PutReader(context.Background(), crashPayload())
	if err != nil {
		t.Fatal(err)
	}
	if d != digestOf(full) {
		t.Fatalf("fresh put digest %s, want %s", d, digestOf(full))
	}
	p, err := r.Path(d)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || st.Size() != int64(len(full)) {
		t.Fatalf("stored blob: %v, %v", st, err)
	}

	// Once stale, the abandoned temporary file is swept by Open.
	old := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(filepath.Join(dir, tempName), old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range storedFiles(t, dir) {
		if strings.HasPrefix(name, tempPrefix) {
			t.Errorf("stale temporary file %s survived Open", name)
		}
	}
}

// BenchmarkPut measures Put (hash, write, fsync, rename) of an 8 MiB blob and
// reports its throughput as a ratio to hashing the same bytes in memory.
func BenchmarkPut(b *testing.B) {
	r, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}

	// Baseline in the same run: sha256 of the same bytes, no I/O.
	const hashRounds = 8
	start := time.Now()
	for i := 0; i < hashRounds; i++ {
		sha256.Sum256(data)
	}
	hashPerOp := time.Since(start) / hashRounds

	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		data[0] = byte(i) // a new blob each time, so every Put writes
		data[1] = byte(i >> 8)
		data[2] = byte(i >> 16)
		if _, err := r.PutReader(context.Background(), bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	putPerOp := b.Elapsed() / time.Duration(b.N)
	mb := float64(len(data)) / (1 << 20)
	b.ReportMetric(mb/hashPerOp.Seconds(), "hash-MiB/s")
	b.ReportMetric(hashPerOp.Seconds()/putPerOp.Seconds(), "put/hash-speed")
}

// FuzzParseDigest checks that whatever ParseDigest accepts is 64 lowercase
// hex digits that round-trip, so an accepted digest can never name a path.
func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{
		"sha256:" + strings.Repeat("ab", 32), strings.Repeat("AB", 32), "", "sha256:",
		"../../etc/passwd", "sha256:" + strings.Repeat("a", 63) + "/", "sha512:00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseDigest(s)
		if err != nil {
			if !errors.Is(err, ErrBadDigest) {
				t.Fatalf("error %v does not wrap ErrBadDigest", err)
			}
			return
		}
		if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
			t.Fatalf("accepted %q as %q", s, h)
		}
		if !strings.EqualFold(strings.TrimPrefix(s, "sha256:"), h) {
			t.Fatalf("%q parsed to a different value %q", s, h)
		}
		again, err := ParseDigest(FormatDigest(h))
		if err != nil || again != h {
			t.Fatalf("round trip of %q: %q, %v", h, again, err)
		}
	})
}
