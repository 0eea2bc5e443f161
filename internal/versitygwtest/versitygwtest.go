// Package versitygwtest runs a real S3 server for tests: versitygw (an
// Apache-2.0 S3 gateway) on loopback with its posix backend in a temporary
// directory, and its website listener, which serves a bucket by the Host
// header. The binary is built by scripts/install-versitygw.sh and found
// through MESH_VERSITYGW or the script's cache; a test that needs it fails
// (never skips) when it is missing, so CI cannot pass without it.
package versitygwtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PinnedVersion is the versitygw version scripts/install-versitygw.sh builds.
const PinnedVersion = "v1.8.0"

// Credentials of the server's root account.
const (
	AccessKey = "meshtestaccess"
	SecretKey = "meshtestsecret-0123456789"
)

// Binary returns the versitygw executable, failing t when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MESH_VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("MESH_VERSITYGW=%s: %v", p, err)
		}
		return p
	}
	root := os.Getenv("MESH_TOOLS_CACHE")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".cache", "mesh-tools")
	}
	p := filepath.Join(root, "versitygw-"+PinnedVersion, "versitygw")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("versitygw %s is not installed (%v): run scripts/install-versitygw.sh, or set MESH_VERSITYGW", PinnedVersion, err)
	}
	return p
}

// Server is one running versitygw.
type Server struct {
	// Endpoint is the S3 API's URL; Website the website listener's host:port.
	Endpoint string
	Website  string

	t       testing.TB
	bin     string
	dir     string
	s3Addr  string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	logFile string
}

// Start runs a server with an empty store; it is stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), dir: t.TempDir()}
	s.s3Addr, s.Website = freeAddr(t), freeAddr(t)
	s.Endpoint = "http://" + s.s3Addr
	s.logFile = filepath.Join(s.dir, "versitygw.log")
	if err := os.MkdirAll(filepath.Join(s.dir, "store"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pick a port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (s *Server) start() {
	s.t.Helper()
	logf, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.bin, "--port", s.s3Addr, "--website", s.Website, "posix", filepath.Join(s.dir, "store"))
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		s.t.Fatalf("start versitygw: %v", err)
	}
	logf.Close()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	if err := waitListening(exited, 10*time.Second, s.s3Addr, s.Website); err != nil {
		s.Stop()
		s.t.Fatalf("versitygw did not come up: %v\n%s", err, s.Log())
	}
}

// waitListening dials each address until it accepts, the process exits or
// the deadline passes.
func waitListening(exited <-chan struct{}, limit time.Duration, addrs ...string) error {
	deadline := time.Now().Add(limit)
	for _, a := range addrs {
		for {
			c, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				return errors.New("the process exited")
			case <-time.After(10 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not listening after %v: %w", a, limit, err)
			}
		}
	}
	return nil
}

// Stop kills the server (SIGKILL to its process, by PID) and waits for it.
// Its store is kept: Restart serves the same buckets on the same ports.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// Restart starts the server again on its store and ports.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Log returns what the server wrote.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logFile)
	return strings.TrimSpace(string(b))
}
