// Package etcdtest runs real etcd clusters for tests: members on loopback,
// each with its own client and peer ports and data directory, started from
// the etcd binary scripts/install-etcd.sh builds (found through
// MESH_ETCD_DIR or the script's cache). A test that needs etcd fails, never
// skips, when the binary is missing, so CI cannot pass without it.
//
// Members use a 50 ms heartbeat and a 500 ms election timeout, so a cluster
// is ready and elects a new leader in well under a second.
package etcdtest

import (
	"context"
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

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// PinnedVersion is the etcd version tools/etcd/go.mod pins.
const PinnedVersion = "v3.7.3"

// Binary returns the etcd executable, failing t when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("MESH_ETCD_DIR")
	if dir == "" {
		root := os.Getenv("MESH_TOOLS_CACHE")
		if root == "" {
			home, _ := os.UserHomeDir()
			root = filepath.Join(home, ".cache", "mesh-tools")
		}
		dir = filepath.Join(root, "etcd-"+PinnedVersion)
	}
	p := filepath.Join(dir, "etcd")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("etcd %s is not installed (%v): run scripts/install-etcd.sh, or set MESH_ETCD_DIR to the directory holding etcd", PinnedVersion, err)
	}
	return p
}

// Member is one etcd process of a Cluster.
type Member struct {
	Name      string
	ClientURL string
	PeerURL   string

	t      testing.TB
	args   []string
	bin    string
	log    string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Cluster is a running etcd cluster.
type Cluster struct {
	Members []*Member
}

// Endpoints are the client URLs of every member.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.ClientURL
	}
	return out
}

// Start runs a cluster of n members and waits until it has a leader; it is
// stopped when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	c := &Cluster{}
	var initial []string
	for i := range n {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: "http://" + freeAddr(t),
			PeerURL:   "http://" + freeAddr(t),
			t:         t, bin: bin,
		}
		initial = append(initial, m.Name+"="+m.PeerURL)
		c.Members = append(c.Members, m)
	}
	for _, m := range c.Members {
		m.log = filepath.Join(dir, m.Name+".log")
		m.args = []string{
			"--name", m.Name,
			"--data-dir", filepath.Join(dir, m.Name),
			"--listen-client-urls", m.ClientURL,
			"--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL,
			"--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", filepath.Base(dir),
			"--heartbeat-interval", "50",
			"--election-timeout", "500",
			"--log-level", "warn",
		}
		m.Start()
		t.Cleanup(m.Kill)
	}
	c.WaitHealthy(t, 30*time.Second)
	return c
}

// Start launches the member's process (again, after Kill) with its data.
func (m *Member) Start() {
	m.t.Helper()
	logf, err := os.OpenFile(m.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		m.t.Fatalf("open etcd log: %v", err)
	}
	cmd := exec.Command(m.bin, m.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		m.t.Fatalf("start etcd member %s: %v", m.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	m.mu.Lock()
	m.cmd, m.exited = cmd, exited
	m.mu.Unlock()
}

// Kill SIGKILLs the member's process by its PID and waits for it to exit.
func (m *Member) Kill() {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// Client returns a client of the whole cluster, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Leader returns the member that is leader now, asking every live member.
func (c *Cluster) Leader(t testing.TB) *Member {
	t.Helper()
	cli := c.Client(t)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range c.Members {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := cli.Status(ctx, m.ClientURL)
			cancel()
			if err == nil && st.Leader != 0 && st.Header.MemberId == st.Leader {
				return m
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("etcd cluster has no leader")
	return nil
}

// WaitHealthy waits until every live member reports a leader.
func (c *Cluster) WaitHealthy(t testing.TB, within time.Duration) {
	t.Helper()
	cli := c.Client(t)
	deadline := time.Now().Add(within)
	for {
		ok := true
		for _, m := range c.Members {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := cli.Status(ctx, m.ClientURL)
			cancel()
			if err != nil || st.Leader == 0 {
				ok = false
				break
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			for _, m := range c.Members {
				b, _ := os.ReadFile(m.log)
				t.Logf("etcd %s log:\n%s", m.Name, b)
			}
			t.Fatalf("etcd cluster not healthy within %s", within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}
