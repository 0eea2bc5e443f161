//go:build linux

package cgroup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// freeze freezes (or thaws) the group: cgroup.freeze on cgroup2,
// freezer.state on a v1 freezer group. Freezing waits until the kernel
// reports every process frozen.
func (g *Group) freeze(on bool) error {
	if state := filepath.Join(g.dir, "freezer.state"); exists(state) {
		v := "THAWED"
		if on {
			v = "FROZEN"
		}
		if err := writeFile(state, v); err != nil || !on {
			return err
		}
		return poll(context.Background(), 2*time.Second, func() (bool, error) {
			data, err := os.ReadFile(state)
			return strings.TrimSpace(string(data)) == "FROZEN", err
		})
	}
	v := "0"
	if on {
		v = "1"
	}
	if err := writeFile(filepath.Join(g.dir, "cgroup.freeze"), v); err != nil {
		return err
	}
	if !on {
		return nil
	}
	return poll(context.Background(), 2*time.Second, func() (bool, error) {
		return eventIs(g.dir, "frozen", "1")
	})
}

// eventIs reports whether cgroup.events of dir has key set to value.
func eventIs(dir, key, value string) (bool, error) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return false, fmt.Errorf("read %s/cgroup.events: %w", dir, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			return v == value, nil
		}
	}
	return false, nil
}

// poll calls done every few milliseconds until it reports true, fails, or
// limit passes.
func poll(ctx context.Context, limit time.Duration, done func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	delay := time.Millisecond
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still waiting after %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 20*time.Millisecond)
	}
}

// Kill SIGKILLs every process of the group and waits until the group is
// empty. It returns how many processes were in it.
func (g *Group) Kill(ctx context.Context) (int, error) {
	return killDir(ctx, g.dir)
}

func killDir(ctx context.Context, dir string) (int, error) {
	procs, err := readProcs(dir)
	if err != nil {
		return 0, err
	}
	n := len(procs)
	if n == 0 {
		return 0, nil
	}
	killFile := filepath.Join(dir, "cgroup.kill")
	if _, err := os.Stat(killFile); err == nil {
		if err := writeFile(killFile, "1"); err != nil {
			return n, err
		}
	} else if err := freezeKill(ctx, dir); err != nil {
		return n, err
	}
	err = poll(ctx, 10*time.Second, func() (bool, error) {
		p, err := readProcs(dir)
		return len(p) == 0, err
	})
	if err != nil {
		return n, fmt.Errorf("kill cgroup %s: %w", dir, err)
	}
	return n, nil
}

// freezeKill is Kill for kernels without cgroup.kill: freeze, SIGKILL each
// pid, thaw, until empty. Killed processes leave cgroup.procs only once they
// are gone, so the loop ends when the listing is empty.
//
// A frozen process cannot act on its SIGKILL: it dies only after the thaw.
// So after each thaw the loop waits for the killed processes to leave the
// listing, and freezes again only when one it did not kill appears (a fork
// that raced the freeze) — freezing again at once would catch the killed
// ones before they could die, on a busy machine pass after pass.
func freezeKill(ctx context.Context, dir string) error {
	g := &Group{dir: dir}
	// v1 limit groups have no freezer of their own: their processes are
	// frozen and killed through the tracking group; what is left is
	// killed pid by pid. A v1 freezer group kills its frozen processes
	// when it thaws.
	canFreeze := exists(filepath.Join(dir, "cgroup.freeze")) || exists(filepath.Join(dir, "freezer.state"))
	killed := map[int]bool{}
	deadline := time.Now().Add(killPatience)
	for {
		if canFreeze {
			if err := g.freeze(true); err != nil {
				return err
			}
		}
		procs, err := readProcs(dir)
		if err == nil {
			for _, p := range procs {
				_ = syscall.Kill(p, syscall.SIGKILL)
				killed[p] = true
			}
		}
		if canFreeze {
			if err := g.freeze(false); err != nil {
				return err
			}
		}
		if err != nil || len(procs) == 0 {
			return err
		}
		wait := 500 * time.Microsecond
		for {
			if time.Now().After(deadline) {
				return fmt.Errorf("cgroup %s: processes still there %v after SIGKILL", dir, killPatience)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			if wait < 20*time.Millisecond {
				wait *= 2
			}
			left, err := readProcs(dir)
			if err != nil {
				return err
			}
			if len(left) == 0 {
				return nil
			}
			if hasNew(left, killed) {
				break // a fork raced the freeze: freeze and kill again
			}
		}
	}
}

// killPatience bounds how long freezeKill waits for a cgroup to empty.
const killPatience = 10 * time.Second

// hasNew reports whether procs holds a pid not in killed.
func hasNew(procs []int, killed map[int]bool) bool {
	for _, p := range procs {
		if !killed[p] {
			return true
		}
	}
	return false
}
