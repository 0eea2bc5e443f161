package edge

import (
	"bufio"
	"errors"
	"io"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"
)

// A request body is relayed to the endpoint by a goroutine of its own while
// the handler waits for the answer, so an endpoint that answers early, or
// streams its answer while it reads, never deadlocks against the edge. A
// request with "Expect: 100-continue" has its head sent alone; the body
// follows the endpoint's 100 Continue, or expectContinueWait without one
// (as http.Transport does), and is never sent when a final answer comes
// first: the connection is then closed after that answer.

// expectContinueWait is how long a body waits for 100 Continue.
const expectContinueWait = time.Second

// flushWait bounds the wait for the last write of a body whose answer is
// already complete.
const flushWait = 50 * time.Millisecond

// Body relay states.
const (
	bodyWaiting  = iota // for 100 Continue
	bodySending         // being written, or written
	bodyDeclined        // a final answer came first: never sent
)

var errBodyDeclined = errors.New("edge: request body not sent: the endpoint answered first")

// bodySender relays one request body.
type bodySender struct {
	uc    *upConn
	o     outReq // a copy: the request stays on the handler's stack
	state atomic.Int32
	wake  chan struct{} // 100 Continue arrived or the body is declined; capacity 1
	done  chan struct{} // closed once the relay ended, werr set before
	werr  error

	upstreamTimeout time.Duration
	mu              sync.Mutex // orders the answer's deadline after the header's
	headRead        bool       // the final answer's header is in
}

// relayBody copies the body from src to dst, n bytes (all of it when n is
// negative), flushing bw after every read but the last so that a body
// sent slowly reaches the endpoint as it comes; a short body goes out with
// the head in one write.
func relayBody(dst io.Writer, bw *bufio.Writer, src io.Reader, buf []byte, n int64) error {
	for n != 0 {
		p := buf
		if n > 0 && int64(len(p)) > n {
			p = p[:n]
		}
		m, err := src.Read(p)
		if m > 0 {
			if _, werr := dst.Write(p[:m]); werr != nil {
				return werr
			}
			if n > 0 {
				n -= int64(m)
			}
		}
		if err == io.EOF {
			if n > 0 {
				return io.ErrUnexpectedEOF
			}
			return nil
		}
		if err != nil {
			return err
		}
		if n != 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// headerRead is called once the final answer's header is in: from then on
// the answer's deadlines are the relay's.
func (s *bodySender) headerRead() {
	s.mu.Lock()
	s.headRead = true
	s.mu.Unlock()
}

// startBody starts relaying o's body on uc, whose buffer holds the head.
func startBody(uc *upConn, o *outReq, upstreamTimeout time.Duration) *bodySender {
	s := &bodySender{uc: uc, o: *o, done: make(chan struct{}), upstreamTimeout: upstreamTimeout}
	if o.expect {
		s.wake = make(chan struct{}, 1)
	} else {
		s.state.Store(bodySending)
	}
	go s.run()
	return s
}

func (s *bodySender) run() {
	defer close(s.done)
	bw := s.uc.bw
	if s.o.expect {
		if err := bw.Flush(); err != nil {
			s.werr = err
			return
		}
		t := time.NewTimer(expectContinueWait)
		select {
		case <-s.wake:
		case <-t.C:
		}
		t.Stop()
		if !s.state.CompareAndSwap(bodyWaiting, bodySending) && s.state.Load() == bodyDeclined {
			s.werr = errBodyDeclined
			return
		}
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	body := s.o.body
	var err error
	if n := s.o.bodyLength; n >= 0 {
		err = relayBody(bw, bw, body, *bp, n)
	} else {
		cw := httputil.NewChunkedWriter(bw)
		if err = relayBody(cw, bw, body, *bp, -1); err == nil {
			err = cw.Close()
		}
		if err == nil {
			for k, vv := range s.o.r.Trailer {
				for _, v := range vv {
					writeField(bw, k, v)
				}
			}
			_, err = bw.WriteString("\r\n")
		}
	}
	if err == nil {
		body.eof.Store(true) // all of it read, even if no read said EOF
		err = bw.Flush()
	}
	if err == nil {
		// Sent: the endpoint now has the upstream timeout to answer.
		s.mu.Lock()
		if !s.headRead {
			s.uc.c.SetReadDeadline(time.Now().Add(s.upstreamTimeout))
		}
		s.mu.Unlock()
	}
	if err != nil && body.failed.Load() != clientBodyOK {
		// The client's body broke off: the endpoint waits for the rest
		// of it, so cut the exchange short; forward answers the client.
		s.uc.poison()
	}
	s.werr = err
}

// proceed lets a body waiting for 100 Continue go.
func (s *bodySender) proceed() {
	if s.wake != nil {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// answered is called with the final answer: it declines a body still
// waiting for 100 Continue, and tells whether the body was (being) sent.
func (s *bodySender) answered() bool {
	if s.state.CompareAndSwap(bodyWaiting, bodyDeclined) {
		s.proceed()
		return false
	}
	return true
}

// abandon stops a body that waits for 100 Continue.
func (s *bodySender) abandon() { s.answered() }

// wait waits up to d for the relay to end.
func (s *bodySender) wait(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
	}
}

// finished tells whether the whole body went out. Once the client's body
// was read to its end only the last write can be left, which it waits for
// briefly; a body still on its way leaves the connection unusable.
func (s *bodySender) finished() bool {
	select {
	case <-s.done:
		return s.werr == nil
	default:
	}
	if !s.o.body.eof.Load() {
		return false
	}
	t := time.NewTimer(flushWait)
	defer t.Stop()
	select {
	case <-s.done:
		return s.werr == nil
	case <-t.C:
		return false
	}
}
