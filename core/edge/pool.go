package edge

import (
	"context"
	"sync"
	"time"
)

// The connection pool of one endpoint. Idle connections form a stack: the
// most recently used one is reused first, so under a light load a few warm
// connections carry the traffic and the others age out, closed by the
// edge's reaper once idle for idleLimit rather than on the next request.
// Every connection, busy or idle, holds one of the endpoint's slots
// (Options.MaxConnsPerEndpoint); a request that finds none waits for a
// connection to come back or a slot to free, in arrival order, for at most
// the upstream timeout.

// connPool is one endpoint's connections. The zero value is not usable;
// see newConnPool.
type connPool struct {
	mu      sync.Mutex
	idle    []*upConn // oldest first; the top of the stack is the end
	open    int       // connections holding a slot, idle or busy
	max     int       // slots
	maxIdle int
	waiters []chan *upConn // a nil delivery hands over a slot to dial with
	closed  bool           // the endpoint left: no more pooling
}

func newConnPool(max, maxIdle int) *connPool {
	return &connPool{max: max, maxIdle: maxIdle}
}

// take returns the newest idle connection (unless skipIdle is set), or nil
// with ok set when a slot was reserved for dialing. It waits while every
// slot is taken, until a connection or a slot is handed over, ctx ends or
// wait passes.
func (p *connPool) take(ctx context.Context, wait time.Duration, skipIdle bool) (uc *upConn, ok bool, err error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 && !skipIdle {
		uc = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return uc, true, nil
	}
	if p.open < p.max {
		p.open++
		p.mu.Unlock()
		return nil, true, nil
	}
	ch := make(chan *upConn, 1)
	p.waiters = append(p.waiters, ch)
	p.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case uc = <-ch:
		return uc, true, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = errPoolTimeout
	}
	p.mu.Lock()
	for i, w := range p.waiters {
		if w == ch {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.mu.Unlock()
			return nil, false, err
		}
	}
	p.mu.Unlock()
	// Handed over just as the wait ended: give it back.
	if uc = <-ch; uc != nil {
		p.put(uc)
	} else {
		p.release()
	}
	return nil, false, err
}

// put returns a usable connection: to the first waiter, or onto the stack.
// It reports false when the pool would not keep it; the caller closes it
// and calls release.
func (p *connPool) put(uc *upConn) bool {
	p.mu.Lock()
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		w <- uc
		return true
	}
	if p.closed || len(p.idle) >= p.maxIdle {
		p.mu.Unlock()
		return false
	}
	p.idle = append(p.idle, uc)
	p.mu.Unlock()
	return true
}

// release gives back the slot of a connection that was closed, or of a
// dial that failed.
func (p *connPool) release() {
	p.mu.Lock()
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		w <- nil // the slot passes to the waiter, which dials
		return
	}
	p.open--
	p.mu.Unlock()
}

// reap closes the connections idle since before cutoff.
func (p *connPool) reap(cutoff time.Time) {
	p.mu.Lock()
	n := 0
	for n < len(p.idle) && p.idle[n].idleFrom.Before(cutoff) {
		n++
	}
	old := make([]*upConn, n)
	copy(old, p.idle[:n])
	rest := copy(p.idle, p.idle[n:])
	clear(p.idle[rest:])
	p.idle = p.idle[:rest]
	p.open -= n
	p.mu.Unlock()
	for _, uc := range old {
		uc.c.Close()
	}
}

// closeAll closes the idle connections and stops pooling: the endpoint
// left or the edge stops. Busy connections close when their request ends.
func (p *connPool) closeAll() {
	p.mu.Lock()
	old := p.idle
	p.idle = nil
	p.open -= len(old)
	p.closed = true
	p.mu.Unlock()
	for _, uc := range old {
		uc.c.Close()
	}
}

// idleCount is the number of pooled connections, for tests and metrics.
func (p *connPool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// reapLoop closes idle connections past idleLimit across every endpoint,
// so that a pool shrinks after a burst without waiting for traffic.
func (e *Edge) reapLoop() {
	defer e.wg.Done()
	t := time.NewTicker(reapInterval)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case now := <-t.C:
			cutoff := now.Add(-idleLimit)
			e.mu.Lock()
			apps := make([]*app, 0, len(e.apps))
			for _, a := range e.apps {
				apps = append(apps, a)
			}
			e.mu.Unlock()
			for _, a := range apps {
				a.mu.Lock()
				eps := a.eps
				a.mu.Unlock()
				for _, ep := range eps {
					ep.pool.reap(cutoff)
				}
			}
		}
	}
}
