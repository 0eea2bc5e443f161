package edge

import (
	"sync"
	"sync/atomic"
)

// Connection goroutines are reused. A goroutine starts with a small stack
// and grows it, by copying, as the first request goes down the handler's
// calls; one started per connection pays that growth on every connection,
// and a client that opens a connection per request pays it per request.
// So a goroutine whose connection ended waits for the next accepted one
// (up to maxIdleWorkers of them wait), keeping its grown stack; the accept
// loop hands a connection to a waiting goroutine, or starts one when none
// waits. Waiting goroutines cost no CPU, and they end when the accept loop
// does.

// maxIdleWorkers is how many goroutines at most wait for a connection.
const maxIdleWorkers = 64

// conn is what a worker serves: a *clientConn.
type conn interface{ serve() }

// workers runs client connections on reused goroutines.
type workers struct {
	ch      chan conn     // unbuffered: a send reaches a waiting goroutine or none
	done    chan struct{} // closed when no connection will come any more
	once    sync.Once
	idle    atomic.Int32
	started atomic.Int64 // goroutines started, for tests
	wg      sync.WaitGroup
}

func newWorkers() *workers {
	return &workers{ch: make(chan conn), done: make(chan struct{})}
}

// run serves cc on a waiting goroutine, or on a new one.
func (w *workers) run(cc conn) {
	select {
	case w.ch <- cc:
	default:
		w.started.Add(1)
		w.wg.Add(1)
		go w.loop(cc)
	}
}

func (w *workers) loop(cc conn) {
	defer w.wg.Done()
	for {
		cc.serve()
		if w.idle.Add(1) > maxIdleWorkers {
			w.idle.Add(-1)
			return
		}
		select {
		case cc = <-w.ch:
			w.idle.Add(-1)
		case <-w.done:
			w.idle.Add(-1)
			return
		}
	}
}

// stop lets the waiting goroutines end; run must not be called after.
func (w *workers) stop() { w.once.Do(func() { close(w.done) }) }
