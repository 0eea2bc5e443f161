package fabric

import (
	"errors"
	"fmt"
)

// ErrConflict is returned by SwapPlan when the app's plan is no longer the
// one the caller read.
var ErrConflict = errors.New("plan changed concurrently")

// SwapPlan publishes p like PublishPlan, but only while the app's current
// plan is still old (nil: while the app has no plan). A caller that computed
// p from a plan it read (a configuration reload keeping the deployed digest)
// thus never overwrites a plan published in between (a deploy).
func (f *Fabric) SwapPlan(old *Plan, p Plan) error {
	if err := p.Validate(); err != nil {
		return err
	}
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.isClosed() {
		return ErrClosed
	}
	cur, ok := f.Plan(p.AppName)
	if ok != (old != nil) || (ok && cur != *old) {
		return fmt.Errorf("publish plan %s: %w", p.AppName, ErrConflict)
	}
	if err := f.put(bucketPlans, p.AppName, p); err != nil {
		return fmt.Errorf("persist plan %s: %w", p.AppName, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plans[p.AppName] = p
	f.revokeExcessLocked(p.AppName)
	for s := range f.subs {
		s.offer(p)
	}
	f.log.Debug("plan swapped", "app", p.AppName, "digest", p.Digest, "min", p.Min, "max", p.Max)
	return nil
}
