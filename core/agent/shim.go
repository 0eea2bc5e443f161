package agent

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/mycelium-mesh/mesh/core/cgroup"
)

// ShimArg is the hidden mesh subcommand that starts a workload inside its
// v1 cgroups: `mesh cgroup-exec BINARY ARGS...` joins the groups named in
// its environment and execs BINARY. Options.ShimCommand names it.
const ShimArg = "cgroup-exec"

// shimEnv carries the cgroup.procs files the shim joins, one per line.
const shimEnv = "MESH_CGROUP_JOIN"

// RunShim is the body of ShimArg. It moves its own process into the
// cgroups listed in the environment, removes that variable and execs
// args[0] with args[1:] under the same pid, so the workload never runs a
// single instruction outside its groups. It returns only on failure.
func RunShim(args []string) error {
	if len(args) == 0 {
		return errors.New(ShimArg + ": no binary to run")
	}
	list := os.Getenv(shimEnv)
	if list == "" {
		return errors.New(ShimArg + ": " + shimEnv + " is not set")
	}
	if err := cgroup.JoinSelf(strings.Split(list, "\n")); err != nil {
		return fmt.Errorf("%s: join cgroups: %w", ShimArg, err)
	}
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, shimEnv+"=") {
			env = append(env, kv)
		}
	}
	err := syscall.Exec(args[0], args, env)
	// A binary extracted a moment ago can still be open for writing in a
	// process forked elsewhere in the mesh; that ends quickly.
	for try := 0; errors.Is(err, syscall.ETXTBSY) && try < 50; try++ {
		time.Sleep(time.Duration(try+1) * time.Millisecond)
		err = syscall.Exec(args[0], args, env)
	}
	return fmt.Errorf("%s: exec %s: %w", ShimArg, args[0], err)
}
