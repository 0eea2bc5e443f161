package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// Ingestor reads streams of messages and hands each valid one to the engine
// as soon as it is complete. Reading never runs ahead of the engine by more
// than the engine's queue: a full queue stops reading, and the producer's
// writes block.
type Ingestor struct {
	Engine   *Engine
	Reporter *Reporter
	Limits   Limits
	Log      hclog.Logger
}

// Stream reads one producer's stream until its end, a framing error, or
// ctx is done (stop reading; what was queued still finishes), then waits
// until every message it read has reported. Jobs run under runCtx. Results
// go to the reporter and, when reply is not nil, to the producer too. It
// returns the framing error, if any.
func (in *Ingestor) Stream(ctx, runCtx context.Context, source string, r io.Reader, reply io.Writer) error {
	var jobs sync.WaitGroup
	defer jobs.Wait()
	log := in.logger().With("source", source)
	rd := NewReader(r, in.Limits)
	for {
		if ctx.Err() != nil {
			return nil
		}
		msg, err := rd.Next()
		idx := rd.Index()
		switch {
		case err == io.EOF:
			log.Debug("stream ended", "messages", idx)
			return nil
		case errors.Is(err, ErrTooLarge):
			in.Reporter.Report(Result{Index: idx, Source: source, Status: StatusInvalid, Err: err, Error: err.Error()}, reply)
			continue
		case err != nil:
			if ctx.Err() != nil {
				return nil
			}
			log.Error("stream unusable, stopped reading", "error", err)
			in.Reporter.Report(Result{Index: idx, Source: source, Status: StatusInvalid, Err: err, Error: err.Error()}, reply)
			return err
		}
		cfg, err := Decode(msg)
		if err != nil {
			err = fmt.Errorf("message %d: %w", idx, err)
			log.Warn("message refused", "error", err)
			in.Reporter.Report(Result{Index: idx, Source: source, Status: StatusInvalid, Err: err, Error: err.Error()}, reply)
			continue
		}
		jobs.Add(1)
		job := Job{Index: idx, Source: source, Config: cfg, Done: func(res Result) {
			defer jobs.Done()
			if res.Err != nil {
				log.Warn("site not reconciled", "site", res.Site, "status", res.Status, "error", res.Err)
			} else {
				log.Info("site reconciled", "site", res.Site, "status", res.Status, "actions", len(res.Actions))
			}
			in.Reporter.Report(res, reply)
		}}
		if err := in.Engine.Submit(ctx, runCtx, job); err != nil {
			jobs.Done()
			return nil // stopping: ctx done while waiting for room
		}
	}
}

func (in *Ingestor) logger() hclog.Logger {
	if in.Log == nil {
		return hclog.NewNullLogger()
	}
	return in.Log
}

// Serve accepts producer connections on l until ctx is done; each
// connection is one stream, and a framing error ends only that connection.
// Results are written back on the connection as well as to the reporter.
// Serve returns once the listener is closed and every connection handler
// has stopped reading.
func (in *Ingestor) Serve(ctx, runCtx context.Context, l net.Listener) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var conns sync.Map
	n := 0
	for {
		c, err := l.Accept()
		if err != nil {
			// Unblock readers of open connections: stop reading, let
			// queued work finish.
			conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
			wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept producer: %w", err)
		}
		n++
		source := fmt.Sprintf("conn-%d", n)
		conns.Store(c, true)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conns.Delete(c)
			// Stream returns once this producer's messages have all
			// reported, so every reply is written before the close.
			_ = in.Stream(ctx, runCtx, source, c, &lockedWriter{w: c})
			c.Close()
		}()
	}
}

// lockedWriter serialises reply lines written by concurrent site workers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
