package fabric

import "sync"

// subscriber buffers plans per app for one reader. offer never blocks; the
// pump goroutine hands plans to the reader in first-changed order, swapping
// in a newer plan of the app it is trying to deliver if one arrives while
// the reader is away.
type subscriber struct {
	mu      sync.Mutex
	pending map[string]Plan
	order   []string // apps with a pending plan, oldest change first
	notify  chan struct{}
	done    chan struct{}
	once    sync.Once
	out     chan Plan
}

func newSubscriber() *subscriber {
	return &subscriber{
		pending: map[string]Plan{},
		notify:  make(chan struct{}, 1),
		done:    make(chan struct{}),
		out:     make(chan Plan),
	}
}

func (s *subscriber) offer(p Plan) {
	s.mu.Lock()
	if _, ok := s.pending[p.AppName]; !ok {
		s.order = append(s.order, p.AppName)
	}
	s.pending[p.AppName] = p
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// next pops the oldest pending plan.
func (s *subscriber) next() (Plan, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.order) == 0 {
		return Plan{}, false
	}
	app := s.order[0]
	s.order = s.order[1:]
	p := s.pending[app]
	delete(s.pending, app)
	return p, true
}

// take removes and returns the pending plan of app, if any.
func (s *subscriber) take(app string) (Plan, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pending[app]
	if !ok {
		return Plan{}, false
	}
	delete(s.pending, app)
	for i, a := range s.order {
		if a == app {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
	return p, true
}

func (s *subscriber) stop() {
	s.once.Do(func() { close(s.done) })
}

func (s *subscriber) pump() {
	defer close(s.out)
	for {
		p, ok := s.next()
		if !ok {
			select {
			case <-s.notify:
				continue
			case <-s.done:
				return
			}
		}
		for sent := false; !sent; {
			select {
			case s.out <- p:
				sent = true
			case <-s.notify:
				if newer, ok := s.take(p.AppName); ok {
					p = newer
				}
			case <-s.done:
				return
			}
		}
	}
}

// Feed is the plan delivery of Subscribe, for other implementations of
// Store: Offer never blocks, plans are coalesced per app and none is
// dropped. Out is closed after Stop.
type Feed struct{ s *subscriber }

// NewFeed starts a feed.
func NewFeed() *Feed {
	f := &Feed{s: newSubscriber()}
	go f.s.pump()
	return f
}

// Offer queues p, replacing an undelivered plan of the same app.
func (f *Feed) Offer(p Plan) { f.s.offer(p) }

// Out is the channel the reader receives plans on.
func (f *Feed) Out() <-chan Plan { return f.s.out }

// Stop ends the feed; Out is closed soon after. It is safe to call more
// than once.
func (f *Feed) Stop() { f.s.stop() }

// Done is closed by Stop.
func (f *Feed) Done() <-chan struct{} { return f.s.done }
