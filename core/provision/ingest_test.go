package provision

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
)

// lineSink is an io.Writer that hands each JSON line to a channel.
type lineSink struct {
	buf bytes.Buffer
	ch  chan Result
}

func newSink() *lineSink { return &lineSink{ch: make(chan Result, 1000)} }

func (s *lineSink) Write(p []byte) (int, error) {
	s.buf.Write(p)
	for {
		line, err := s.buf.ReadBytes('\n')
		if err != nil {
			s.buf.Write(line)
			return len(p), nil
		}
		var r Result
		if err := json.Unmarshal(line, &r); err != nil {
			panic(err)
		}
		s.ch <- r
	}
}

func encodeStream(t *testing.T, cs ...*Config) []byte {
	t.Helper()
	var b bytes.Buffer
	w := NewWriter(&b)
	for _, c := range cs {
		m, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func newIngestor(t *testing.T, be Backend, out io.Writer) *Ingestor {
	t.Helper()
	return &Ingestor{Engine: newTestEngine(t, be, EngineOptions{}), Reporter: NewReporter(out)}
}

// A slow producer's messages are applied one by one: the first is applied
// before the second is even written.
func TestStreamAppliesAsMessagesArrive(t *testing.T) {
	sink := newSink()
	in := newIngestor(t, newMem(), sink)
	pr, pw := io.Pipe()
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- in.Stream(ctx, ctx, "stdin", pr, nil) }()

	if _, err := pw.Write(encodeStream(t, site("a", "v1", "a.test"))); err != nil {
		t.Fatal(err)
	}
	if r := <-sink.ch; r.Site != "a" || r.Status != StatusApplied {
		t.Fatalf("first result %+v", r)
	}
	if _, err := pw.Write(encodeStream(t, site("b", "v1", "b.test"))); err != nil {
		t.Fatal(err)
	}
	if r := <-sink.ch; r.Site != "b" || r.Status != StatusApplied || r.Index != 1 {
		t.Fatalf("second result %+v", r)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if code := in.Reporter.ExitCode(); code != ExitOK {
		t.Fatalf("exit code %d", code)
	}
}

func TestStreamTruncatedAppliesCompleteMessagesThenStops(t *testing.T) {
	sink := newSink()
	in := newIngestor(t, newMem(), sink)
	full := encodeStream(t, site("a", "v1", "a.test"), site("b", "v1", "b.test"), site("c", "v1", "c.test"))
	ctx := context.Background()
	err := in.Stream(ctx, ctx, "stdin", bytes.NewReader(full[:len(full)-4]), nil)
	if !errors.Is(err, ErrFraming) {
		t.Fatalf("stream error %v, want ErrFraming", err)
	}
	close(sink.ch)
	got := map[string]string{}
	for r := range sink.ch {
		got[r.Site] = r.Status
	}
	if got["a"] != StatusApplied || got["b"] != StatusApplied || got[""] != StatusInvalid || len(got) != 3 {
		t.Fatalf("results %v", got)
	}
	if code := in.Reporter.ExitCode(); code != ExitFraming {
		t.Fatalf("exit code %d, want %d", code, ExitFraming)
	}
}

func TestStreamInvalidMessageGoesOn(t *testing.T) {
	sink := newSink()
	in := newIngestor(t, newMem(), sink)
	bad := site("Bad_Id", "v1", "x.test")
	ctx := context.Background()
	if err := in.Stream(ctx, ctx, "stdin", bytes.NewReader(encodeStream(t, bad, site("a", "v1", "a.test"))), nil); err != nil {
		t.Fatal(err)
	}
	if r := <-sink.ch; r.Status != StatusInvalid || r.Index != 0 {
		t.Fatalf("first %+v", r)
	}
	if r := <-sink.ch; r.Status != StatusApplied || r.Site != "a" {
		t.Fatalf("second %+v", r)
	}
	if code := in.Reporter.ExitCode(); code != ExitSomeFailed {
		t.Fatalf("exit code %d, want %d", code, ExitSomeFailed)
	}
}

// In daemon mode each connection is a stream with its replies; a framing
// error ends only that connection.
func TestServeConnectionsAreIndependent(t *testing.T) {
	sink := newSink()
	in := newIngestor(t, newMem(), sink)
	sock := filepath.Join(t.TempDir(), "p.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- in.Serve(ctx, context.Background(), l) }()

	good, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	replies := bufio.NewScanner(good)
	if _, err := good.Write(encodeStream(t, site("a", "v1", "a.test"))); err != nil {
		t.Fatal(err)
	}
	if !replies.Scan() {
		t.Fatalf("no reply: %v", replies.Err())
	}

	bad, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Write([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	if err := bad.(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The bad connection gets its refusal and is closed by the daemon.
	br := bufio.NewScanner(bad)
	if !br.Scan() {
		t.Fatal("no refusal on the bad connection")
	}
	var r Result
	_ = json.Unmarshal(br.Bytes(), &r)
	if r.Status != StatusInvalid {
		t.Fatalf("bad connection reply %+v", r)
	}
	if br.Scan() {
		t.Fatalf("bad connection still open: %s", br.Text())
	}
	bad.Close()

	// The good one goes on.
	if _, err := good.Write(encodeStream(t, site("b", "v1", "b.test"))); err != nil {
		t.Fatal(err)
	}
	if !replies.Scan() {
		t.Fatal("no second reply")
	}
	_ = json.Unmarshal(replies.Bytes(), &r)
	if r.Site != "b" || r.Status != StatusApplied {
		t.Fatalf("second reply %+v", r)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// Stopping (SIGTERM) stops reading but lets the message in flight finish.
func TestStreamStopFinishesInFlight(t *testing.T) {
	be := newMem()
	be.gate = make(chan struct{})
	be.entered = make(chan string, 10)
	sink := newSink()
	in := newIngestor(t, be, sink)
	pr, pw := io.Pipe()
	readCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Stream(readCtx, context.Background(), "stdin", pr, nil) }()
	if _, err := pw.Write(encodeStream(t, site("a", "v1", "a.test"))); err != nil {
		t.Fatal(err)
	}
	<-be.entered // a is being applied
	stop()
	// The reader is blocked in Read; a message completed after the stop
	// is not submitted.
	go func() { _, _ = pw.Write(encodeStream(t, site("b", "v1", "b.test"))); pw.Close() }()
	be.gate <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := <-sink.ch; r.Site != "a" || r.Status != StatusApplied {
		t.Fatalf("in-flight result %+v", r)
	}
	select {
	case r := <-sink.ch:
		t.Fatalf("message read after the stop was handled: %+v", r)
	default:
	}
	if _, ok := be.routes["b.test"]; ok {
		t.Fatal("b applied after the stop")
	}
}
