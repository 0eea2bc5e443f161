package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// LogRelayArg is the hidden mesh subcommand that keeps the logs of one
// workload: `mesh log-relay STDOUT_LOG STDERR_LOG MAX_SIZE MAX_FILES`
// copies descriptors 3 and 4 (the read ends of the workload's stdout and
// stderr pipes) into rotating files and exits once every writer is gone.
// Options.LogRelayCommand names it.
//
// Why a process of its own: a workload's stdout and stderr are pipes, and
// a pipe whose reader is gone turns every later write into SIGPIPE. When
// the agent itself holds the read ends, a restarting agent kills (or
// blocks, once the pipe is full) every workload that logs. The relay is
// tiny, started outside the instance's cgroup and process group and without
// a death signal, so it outlives the agent; it ends by itself when the
// workload and everything it forked are gone. The alternatives were
// weighed: a workload writing straight into a file cannot be rotated
// without losing lines (copy-and-truncate) and grows without bound while
// no agent runs; a FIFO the next agent reopens has no reader in between, so
// writes fail exactly when the agent is down. The relay costs one small
// process per instance and keeps the same size bounds (LogPolicy) whether
// or not an agent runs.
const LogRelayArg = "log-relay"

// RunLogRelay is the body of LogRelayArg. It returns when both streams
// reached end of file, or at once with an error on bad arguments.
func RunLogRelay(args []string) error {
	if len(args) != 4 {
		return fmt.Errorf("%s: want STDOUT_LOG STDERR_LOG MAX_SIZE MAX_FILES, got %d arguments", LogRelayArg, len(args))
	}
	size, err := strconv.ParseInt(args[2], 10, 64)
	if err != nil {
		return fmt.Errorf("%s: max size %q: %w", LogRelayArg, args[2], err)
	}
	files, err := strconv.Atoi(args[3])
	if err != nil {
		return fmt.Errorf("%s: max files %q: %w", LogRelayArg, args[3], err)
	}
	pol := LogPolicy{MaxSize: size, MaxFiles: files}
	// Terminal signals aimed at the mesh's group must not end the relay
	// before the workload: it ends on end of file only.
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGPIPE)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for k, path := range args[:2] {
		src := os.NewFile(uintptr(3+k), "stream")
		if src == nil {
			return fmt.Errorf("%s: descriptor %d is not open", LogRelayArg, 3+k)
		}
		dst, err := openRotating(path, pol)
		if err != nil {
			return fmt.Errorf("%s: %w", LogRelayArg, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer dst.Close()
			defer src.Close()
			errs[k] = drain(src, dst)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// drain copies src into dst until src ends. Write errors (a full disk) do
// not stop it, or the workload would block on a full pipe.
func drain(src io.Reader, dst io.Writer) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			_, _ = dst.Write(buf[:n])
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read stream: %w", err)
		}
	}
}

// relay is a started log relay: the write ends the workload gets, and the
// relay process.
type relay struct {
	stdout, stderr *os.File
	cmd            *exec.Cmd
	done           chan struct{} // closed when the relay exited and was reaped
}

// startRelay starts the log relay of an instance writing into dir.
func (a *Agent) startRelay(dir string, pol LogPolicy) (*relay, error) {
	pol = pol.withDefaults()
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		_ = outR.Close()
		_ = outW.Close()
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	c := a.opts.LogRelayCommand
	args := append(append([]string(nil), c[1:]...),
		filepath.Join(dir, "stdout.log"), filepath.Join(dir, "stderr.log"),
		strconv.FormatInt(pol.MaxSize, 10), strconv.Itoa(pol.MaxFiles))
	cmd := exec.Command(c[0], args...)
	cmd.Dir = dir
	cmd.Env = workloadEnv(nil, nil, a.opts.Secrets)
	cmd.ExtraFiles = []*os.File{outR, errR}
	// Its own group and no death signal: it must outlive the agent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	_ = outR.Close()
	_ = errR.Close()
	if err != nil {
		_ = outW.Close()
		_ = errW.Close()
		return nil, fmt.Errorf("start log relay %s: %w", c[0], err)
	}
	r := &relay{stdout: outW, stderr: errW, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(r.done)
	}()
	return r, nil
}

// closeWriters drops the agent's copies of the write ends once the
// workload has them (or failed to start), so the relay sees end of file
// when the workload is gone.
func (r *relay) closeWriters() {
	_ = r.stdout.Close()
	_ = r.stderr.Close()
}

// tailBytes is how much of the end of a log file fileTail reads.
const tailBytes = 16 << 10

// fileTail returns up to n of the last lines of the file at path (the
// unfinished last line included); nil when it cannot be read.
func fileTail(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil
	}
	off := max(info.Size()-tailBytes, 0)
	buf := make([]byte, info.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return nil
	}
	if off > 0 {
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:] // the first line is cut: drop it
		}
	}
	t := &lineTail{}
	_, _ = t.Write(buf)
	lines := t.last(n)
	for k, l := range lines {
		lines[k] = strings.TrimRight(l, "\r")
	}
	return lines
}
