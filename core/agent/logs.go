package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Log rotation defaults, per stream of each instance.
const (
	DefaultLogMaxSize  = 10 << 20 // bytes per file
	DefaultLogMaxFiles = 3        // files kept per stream, the current one included
	// stderrTailLines is how many of the last stderr lines an instance
	// keeps in memory for status and failure messages.
	stderrTailLines = 20
	tailLineMax     = 512 // bytes kept of one line
)

// LogPolicy bounds the log files of one app's instances: each of stdout
// and stderr is rotated when it reaches MaxSize, and MaxFiles files are
// kept (stderr.log, stderr.log.1, … stderr.log.<MaxFiles-1>), so a stream
// never takes more than MaxSize × MaxFiles on disk. Zero fields take the
// defaults.
type LogPolicy struct {
	MaxSize  int64
	MaxFiles int
}

func (p LogPolicy) withDefaults() LogPolicy {
	if p.MaxSize <= 0 {
		p.MaxSize = DefaultLogMaxSize
	}
	if p.MaxFiles <= 0 {
		p.MaxFiles = DefaultLogMaxFiles
	}
	return p
}

// rotatingFile is an append-only log file with a size cap. The workload
// never holds the file: it writes into a pipe and the agent copies from the
// pipe into a rotatingFile, so rotation is a rename the workload cannot
// race with. (A library rotator would do, but the common one starts a
// goroutine per file that never ends, and an agent opens two files per
// instance for as long as it runs.)
type rotatingFile struct {
	path string
	pol  LogPolicy

	mu   sync.Mutex
	f    *os.File
	size int64
}

func openRotating(path string, pol LogPolicy) (*rotatingFile, error) {
	r := &rotatingFile{path: path, pol: pol.withDefaults()}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log %s: %w", r.path, err)
	}
	info, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("stat log %s: %w", r.path, err)
	}
	r.f, r.size = f, info.Size()
	return nil
}

// Write appends p, rotating first when p would take the file past its cap.
// A single write larger than the cap goes whole into a fresh file.
func (r *rotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, os.ErrClosed
	}
	if r.size > 0 && r.size+int64(len(p)) > r.pol.MaxSize {
		if err := r.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

// rotate shifts path.N-1 → path.N … path → path.1, dropping the oldest.
func (r *rotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("close log %s: %w", r.path, err)
	}
	r.f = nil
	keep := r.pol.MaxFiles - 1 // rotated files kept
	if keep == 0 {
		if err := os.Remove(r.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate log %s: %w", r.path, err)
		}
		return r.open()
	}
	_ = os.Remove(r.path + "." + strconv.Itoa(keep))
	for n := keep - 1; n >= 1; n-- {
		from := r.path + "." + strconv.Itoa(n)
		if err := os.Rename(from, r.path+"."+strconv.Itoa(n+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate log %s: %w", from, err)
		}
	}
	if err := os.Rename(r.path, r.path+".1"); err != nil {
		return fmt.Errorf("rotate log %s: %w", r.path, err)
	}
	return r.open()
}

func (r *rotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// lineTail keeps the last few lines written to it.
type lineTail struct {
	mu      sync.Mutex
	lines   []string
	partial []byte
}

func (t *lineTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			t.partial = appendCapped(t.partial, p)
			break
		}
		t.partial = appendCapped(t.partial, p[:i])
		t.push(string(t.partial))
		t.partial = t.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

func appendCapped(b, p []byte) []byte {
	if room := tailLineMax - len(b); room < len(p) {
		p = p[:max(room, 0)]
	}
	return append(b, p...)
}

func (t *lineTail) push(line string) {
	line = strings.TrimRight(line, "\r")
	if len(t.lines) == stderrTailLines {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:len(t.lines)-1]
	}
	t.lines = append(t.lines, line)
}

// last returns up to n of the last lines, the unfinished one included.
func (t *lineTail) last(n int) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.lines...)
	if len(t.partial) > 0 {
		out = append(out, string(t.partial))
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// streamPipe makes the pipe a workload writes one stream into and starts
// copying it into the rotating file at path (and into extra, if set). The
// returned write end goes to the child and must be closed by the caller
// once the child started; done is closed when every writer is gone and the
// copy is over.
func streamPipe(path string, pol LogPolicy, extra io.Writer) (w *os.File, done <-chan struct{}, err error) {
	file, err := openRotating(path, pol)
	if err != nil {
		return nil, nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		_ = file.Close()
		return nil, nil, fmt.Errorf("pipe for %s: %w", path, err)
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		defer pr.Close()
		defer file.Close()
		var dst io.Writer = file
		if extra != nil {
			dst = io.MultiWriter(file, extra)
		}
		// Write errors (a full disk) must not stop the copy, or the
		// workload would block on a full pipe: keep draining.
		buf := make([]byte, 32<<10)
		for {
			n, err := pr.Read(buf)
			if n > 0 {
				_, _ = dst.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	return pw, ch, nil
}
