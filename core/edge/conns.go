package edge

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Connection cap. Each client connection costs the process one file
// descriptor, and one more for the endpoint connection behind each request
// in flight; the control API, the agents' workload pipes and the plugin
// channels draw on the same limit. A flood of client connections must not
// starve them, so the edge stops accepting at Options.MaxConnections:
// further connections wait in the kernel's listen backlog (costing the
// process nothing) until one of the open ones closes.

// connReserveMin is the smallest number of descriptors ConnectionCap leaves
// to everything that is not the edge.
const connReserveMin = 256

// ConnectionCap is the default cap on client connections for a process
// whose soft descriptor limit is soft. It keeps a reserve of an eighth of
// the limit (at least 256) for the control plane, and divides the rest by
// three: a client connection, its endpoint connection, and as many again
// for the idle endpoint connections pooled for reuse.
func ConnectionCap(soft uint64) int {
	reserve := soft / 8
	if reserve < connReserveMin {
		reserve = connReserveMin
	}
	if soft <= reserve+3 {
		return 1
	}
	return int((soft - reserve) / 3)
}

// capListener accepts while fewer than max of its connections are open.
type capListener struct {
	net.Listener
	max     int64
	open    atomic.Int64
	wake    chan struct{} // a connection closed; capacity 1 so no wake is lost
	done    chan struct{} // closed by Close
	once    sync.Once
	log     hclog.Logger
	lastLog atomic.Int64 // unix seconds of the last "saturated" warning
}

func newCapListener(ln net.Listener, max int, log hclog.Logger) *capListener {
	return &capListener{
		Listener: ln,
		max:      int64(max),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		log:      log,
	}
}

// Accept waits for a free slot, then for a connection.
func (l *capListener) Accept() (net.Conn, error) {
	for l.open.Load() >= l.max {
		if now := time.Now().Unix(); now-l.lastLog.Load() >= 10 {
			l.lastLog.Store(now)
			l.log.Warn("edge connection cap reached: new connections wait in the listen backlog", "max_connections", l.max)
		}
		select {
		case <-l.wake:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.open.Add(1)
	return &cappedConn{Conn: c, l: l}, nil
}

// Close stops Accept, waiting or not, and closes the listener.
func (l *capListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

func (l *capListener) release() {
	l.open.Add(-1)
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// cappedConn gives its slot back when closed, once.
type cappedConn struct {
	net.Conn
	l      *capListener
	closed atomic.Bool
}

func (c *cappedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.release()
	}
	return err
}

// Connections returns the client connections open now and the cap; both
// are zero before Start.
func (e *Edge) Connections() (open, max int) {
	if e.capLn == nil {
		return 0, 0
	}
	return int(e.capLn.open.Load()), int(e.capLn.max)
}
