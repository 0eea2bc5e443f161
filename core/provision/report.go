package provision

import (
	"encoding/json"
	"errors"
	"io"
	"sync"
)

// Exit codes of `mesh provision` in single-run mode.
const (
	ExitOK            = 0  // every message applied, unchanged or planned
	ExitSomeFailed    = 1  // some message invalid or failed
	ExitFraming       = 2  // truncated or garbage stream: reading stopped
	ExitConfigMissing = 78 // some message needs configuration that is absent (EX_CONFIG)
)

// Reporter writes each result as one JSON line to every sink and keeps the
// counts that decide the exit code. It is safe for concurrent use.
type Reporter struct {
	mu      sync.Mutex
	out     io.Writer
	counts  map[string]int
	config  bool
	framing bool
}

// NewReporter writes JSON lines to out.
func NewReporter(out io.Writer) *Reporter {
	return &Reporter{out: out, counts: map[string]int{}}
}

// Report writes r to the reporter's output and to extra (a producer's
// connection), ignoring write errors on extra: a producer that went away
// does not stop the provisioner.
func (rp *Reporter) Report(r Result, extra io.Writer) {
	line, err := json.Marshal(r)
	if err != nil {
		line = []byte(`{"status":"failed","error":"encode result"}`)
	}
	line = append(line, '\n')
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.counts[r.Status]++
	if errors.Is(r.Err, ErrConfigMissing) {
		rp.config = true
	}
	if errors.Is(r.Err, ErrFraming) {
		rp.framing = true
	}
	_, _ = rp.out.Write(line)
	if extra != nil {
		_, _ = extra.Write(line)
	}
}

// Counts returns how many results had each status.
func (rp *Reporter) Counts() map[string]int {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	out := make(map[string]int, len(rp.counts))
	for k, v := range rp.counts {
		out[k] = v
	}
	return out
}

// ExitCode maps what was reported to the single-run exit code: a framing
// error first (the stream was not read to its end), then missing
// configuration, then any invalid or failed message.
func (rp *Reporter) ExitCode() int {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	switch {
	case rp.framing:
		return ExitFraming
	case rp.config:
		return ExitConfigMissing
	case rp.counts[StatusInvalid] > 0 || rp.counts[StatusFailed] > 0:
		return ExitSomeFailed
	}
	return ExitOK
}
