package fabric

import (
	"fmt"
	"sort"
)

// Admission is decided the same way by every store, from the same three
// inputs: the app's limits, the claims held now (per node) and the claim
// asked for. The rules, pure functions over those inputs, live here once;
// each store only gathers its claims into AppClaims under its own
// consistency (a lock for the embedded store, one read revision and a
// transaction for etcd).

// ClaimSize is one claim as the admission rules see it.
type ClaimSize struct {
	CPU, Mem int  // CPU in milli-cores, memory in MB
	Revoked  bool // revoked by lowered limits; its instance may still run
}

// AppClaims are the claims of one app by node ID. A node listed holds at
// least one claim.
type AppClaims map[string][]ClaimSize

// Limits bound an app: min(Plan.Max, Budget.MaxInstances) and the budget's
// resources, 0 meaning none.
type Limits struct {
	Instances, CPUmilli, MemoryMB int
}

// LimitsOf returns the limits of an app from its plan (if it has one) and
// its budget.
func LimitsOf(p Plan, hasPlan bool, b Budget) Limits {
	l := Limits{CPUmilli: b.CPUmilli, MemoryMB: b.MemoryMB}
	if hasPlan {
		l.Instances = p.Max
	}
	if b.MaxInstances > 0 && (l.Instances == 0 || b.MaxInstances < l.Instances) {
		l.Instances = b.MaxInstances
	}
	return l
}

func (l Limits) none() bool { return l.Instances == 0 && l.CPUmilli == 0 && l.MemoryMB == 0 }

// Usage counts the nodes holding at least one claim, each sized by the
// largest of its claims (revoked ones included, since their instances may
// still run), plus extra on extraNode when extra is set.
func (c AppClaims) Usage(extraNode string, extra *ClaimSize) Usage {
	var u Usage
	seen := false
	for node, cs := range c {
		if len(cs) == 0 {
			continue
		}
		cpu, mem := 0, 0
		for _, s := range cs {
			cpu, mem = max(cpu, s.CPU), max(mem, s.Mem)
		}
		if extra != nil && node == extraNode {
			cpu, mem, seen = max(cpu, extra.CPU), max(mem, extra.Mem), true
		}
		u.Instances++
		u.CPUmilli += cpu
		u.MemoryMB += mem
	}
	if extra != nil && !seen {
		u.Instances++
		u.CPUmilli += extra.CPU
		u.MemoryMB += extra.Mem
	}
	return u
}

// Excess returns the nodes in excess of l: nodes with an unrevoked claim
// (extra included on extraNode) are taken in node-ID order, each sized by
// its largest unrevoked claim, and from the first node whose admission would
// break a limit on, every node is in excess. With the limits met by the
// total, no node is.
func (c AppClaims) Excess(l Limits, extraNode string, extra *ClaimSize) map[string]bool {
	if l.none() {
		return nil
	}
	type nodeUse struct {
		id       string
		cpu, mem int
	}
	var nodes []nodeUse
	for id, cs := range c {
		u, held := nodeUse{id: id}, false
		for _, s := range cs {
			if !s.Revoked {
				u.cpu, u.mem, held = max(u.cpu, s.CPU), max(u.mem, s.Mem), true
			}
		}
		if extra != nil && id == extraNode {
			u.cpu, u.mem, held = max(u.cpu, extra.CPU), max(u.mem, extra.Mem), true
		}
		if held {
			nodes = append(nodes, u)
		}
	}
	if _, ok := c[extraNode]; extra != nil && !ok {
		nodes = append(nodes, nodeUse{id: extraNode, cpu: extra.CPU, mem: extra.Mem})
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].id < nodes[j].id })
	var out map[string]bool
	count, cpu, mem := 0, 0, 0
	for _, n := range nodes {
		count, cpu, mem = count+1, cpu+n.cpu, mem+n.mem
		if out == nil && !(l.Instances > 0 && count > l.Instances || l.CPUmilli > 0 && cpu > l.CPUmilli || l.MemoryMB > 0 && mem > l.MemoryMB) {
			continue
		}
		if out == nil {
			out = map[string]bool{}
		}
		out[n.id] = true
	}
	return out
}

// Admit returns why a claim of size on node is refused (wrapping
// ErrBudgetExceeded), or nil. A claim is refused only on a dimension it
// would raise, or when its node would be in excess of lowered limits.
func (c AppClaims) Admit(app, node string, l Limits, size ClaimSize) error {
	before := c.Usage("", nil)
	after := c.Usage(node, &size)
	switch {
	case l.Instances > 0 && after.Instances > before.Instances && after.Instances > l.Instances:
		return fmt.Errorf("claim %s on %s: %d instances already, limit %d: %w", app, node, before.Instances, l.Instances, ErrBudgetExceeded)
	case l.CPUmilli > 0 && after.CPUmilli > before.CPUmilli && after.CPUmilli > l.CPUmilli:
		return fmt.Errorf("claim %s on %s: cpu %dm would exceed budget %dm: %w", app, node, after.CPUmilli, l.CPUmilli, ErrBudgetExceeded)
	case l.MemoryMB > 0 && after.MemoryMB > before.MemoryMB && after.MemoryMB > l.MemoryMB:
		return fmt.Errorf("claim %s on %s: memory %dMB would exceed budget %dMB: %w", app, node, after.MemoryMB, l.MemoryMB, ErrBudgetExceeded)
	case c.Excess(l, node, &size)[node]:
		return fmt.Errorf("claim %s on %s: node is beyond the lowered limits: %w", app, node, ErrBudgetExceeded)
	}
	return nil
}
