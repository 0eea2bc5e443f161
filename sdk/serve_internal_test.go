package sdk

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/sdk/internal/hostapi"
)

// Roles a re-executed test binary can play in TestParentWatch.
const roleEnv = "SDK_TEST_ROLE"

type nopHealth struct{}

func (nopHealth) Info() Info                              { return Info{Kind: KindHealth, Name: "nop", Version: "0"} }
func (nopHealth) Schema() Schema                          { return Schema{} }
func (nopHealth) Configure(context.Context, Config) error { return nil }
func (nopHealth) Check(context.Context, HealthCheck) (HealthResult, error) {
	return HealthResult{Healthy: true}, nil
}

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "plugin", "plugin-poll-only":
		useDeathSignal = os.Getenv(roleEnv) == "plugin"
		Serve(nopHealth{})
		os.Exit(0)
	case "parent":
		parentRole()
		return
	}
	os.Exit(m.Run())
}

// parentRole starts a plugin child, waits for its handshake line, prints
// the child's pid and waits to be killed.
func parentRole() {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		roleEnv+"="+os.Getenv("SDK_TEST_CHILD_ROLE"),
		hostapi.Handshake.MagicCookieKey+"="+hostapi.Handshake.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS=1",
	)
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	if err := cmd.Start(); err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.Contains(line, "grpc") {
		fmt.Println("ERR handshake", line, err)
		os.Exit(1)
	}
	fmt.Println("CHILD", cmd.Process.Pid)
	select {}
}

func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// A served plugin exits when its parent is SIGKILLed: through the kernel
// hook, and through the poller alone.
func TestParentWatch(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	for _, role := range []string{"plugin", "plugin-poll-only"} {
		t.Run(role, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), roleEnv+"=parent", "SDK_TEST_CHILD_ROLE="+role)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			})
			line, err := bufio.NewReader(out).ReadString('\n')
			var child int
			if _, serr := fmt.Sscanf(line, "CHILD %d", &child); err != nil || serr != nil {
				t.Fatalf("parent said %q (%v)", line, err)
			}
			t.Cleanup(func() {
				if processAlive(child) {
					_ = syscall.Kill(child, syscall.SIGKILL)
				}
			})
			if !processAlive(child) {
				t.Fatal("plugin not running")
			}
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			start := time.Now()
			for processAlive(child) {
				if time.Since(start) > 10*time.Second {
					t.Fatalf("plugin %d still alive 10s after its parent died", child)
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("plugin gone %s after its parent", time.Since(start))
		})
	}
}
