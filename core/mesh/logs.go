package mesh

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mycelium-mesh/mesh/core/agent"
)

// Workload logs over the control API: GET /v1/logs streams, as text, the
// last lines of the stdout and stderr logs of an app's instances, each line
// prefixed with "<node> <instance> <stream>| ". With follow it keeps the
// response open and streams lines as the workloads write them, across log
// rotations, and picks up instances started meanwhile (a restart, a
// rollout), until the client goes away.

// Bounds of one logs request.
const (
	defaultLogTail = 50
	maxLogTail     = 10000
	// logTailWindow bounds how far back from the end of a file the initial
	// tail reads.
	logTailWindow = 1 << 20
	// logLineMax bounds one line a follower holds back while it waits for
	// its newline: a longer one is passed on in pieces of this size.
	logLineMax    = 64 << 10
	logFollowPoll = 200 * time.Millisecond
	// logRescanEvery is how many polls pass between looks for new instances.
	logRescanEvery = 5
)

// LogsQuery selects workload log lines. App is required; Node and Instance
// narrow the instances; Stream is "stdout", "stderr" or "" for both.
type LogsQuery struct {
	App, Node, Instance, Stream string
	Tail                        int // lines per stream to start with; 0 = 50
	Follow                      bool
}

// logPolicy is the rotation policy of app's instances, from the current
// configuration: a reloaded logs block applies to the next instance.
func (m *Mesh) logPolicy(app string) agent.LogPolicy {
	if a, ok := m.Config().App(app); ok {
		return agent.LogPolicy{MaxSize: a.Logs.MaxSize, MaxFiles: a.Logs.MaxFiles}
	}
	return agent.LogPolicy{}
}

func parseLogsQuery(v url.Values) (LogsQuery, error) {
	q := LogsQuery{App: v.Get("app"), Node: v.Get("node"), Instance: v.Get("instance"), Stream: v.Get("stream"), Tail: defaultLogTail}
	if q.App == "" {
		return q, errors.New("logs: app is required")
	}
	switch q.Stream {
	case "", "stdout", "stderr":
	default:
		return q, fmt.Errorf("logs: stream %q: want stdout, stderr or both (empty)", q.Stream)
	}
	if t := v.Get("tail"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 || n > maxLogTail {
			return q, fmt.Errorf("logs: tail %q: want 0..%d", t, maxLogTail)
		}
		q.Tail = n
	}
	q.Follow = v.Get("follow") == "1" || v.Get("follow") == "true"
	return q, nil
}

// logInstances picks the instances whose logs a query shows: on each node
// the live instances of the app, or the newest finished one when none is
// live (a crash loop's last victim); with Instance, only that one. With
// all, every instance the query's filters match.
func (m *Mesh) logInstances(q LogsQuery, all bool) []InstanceStatus {
	var out []InstanceStatus
	newestDone := map[string]InstanceStatus{}
	liveOn := map[string]bool{}
	for _, in := range m.Status().Instances {
		if in.App != q.App || (q.Node != "" && in.NodeID != q.Node) || in.Dir == "" {
			continue
		}
		if all && (q.Instance == "" || q.Instance == in.Instance) {
			out = append(out, in)
			continue
		}
		if q.Instance != "" {
			if in.Instance == q.Instance {
				out = append(out, in)
			}
			continue
		}
		switch in.State {
		case agent.StateStopped, agent.StateFailed:
			if prev, ok := newestDone[in.NodeID]; !ok || in.Since.After(prev.Since) {
				newestDone[in.NodeID] = in
			}
		default:
			liveOn[in.NodeID] = true
			out = append(out, in)
		}
	}
	for node, in := range newestDone {
		if !liveOn[node] {
			out = append(out, in)
		}
	}
	return out
}

// logFile is one stream of one instance being read.
type logFile struct {
	prefix string
	path   string
	f      *os.File
	buf    []byte // a partial last line
}

func (m *Mesh) handleLogs(w http.ResponseWriter, r *http.Request) {
	q, err := parseLogsQuery(r.URL.Query())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	insts := m.logInstances(q, false)
	// Instances known now are shown as selected; those that appear while
	// following (a restart, a rollout, a crash loop) are all shown.
	known := map[string]bool{}
	for _, in := range m.logInstances(q, true) {
		known[in.Instance] = true
	}
	if len(insts) == 0 && !q.Follow {
		where := ""
		if q.Node != "" {
			where = " on node " + q.Node
		}
		if q.Instance != "" {
			where += " with id " + q.Instance
		}
		writeErr(w, fmt.Errorf("%w: no instance of %q%s", ErrUnknownApp, q.App, where))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	bw := bufio.NewWriter(w)
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		return nil
	}
	files := map[string]*logFile{}
	defer func() {
		for _, lf := range files {
			if lf.f != nil {
				_ = lf.f.Close()
			}
		}
	}()
	add := func(in InstanceStatus, tail int, fromStart bool) {
		for _, stream := range []string{"stdout", "stderr"} {
			if q.Stream != "" && q.Stream != stream {
				continue
			}
			path := filepath.Join(in.Dir, stream+".log")
			if files[path] != nil {
				continue
			}
			lf := &logFile{prefix: in.NodeID + " " + in.Instance + " " + stream + "| ", path: path}
			files[path] = lf
			lf.open(bw, tail, q.Follow, fromStart)
		}
	}
	for _, in := range insts {
		add(in, q.Tail, false)
	}
	if err := flush(); err != nil || !q.Follow {
		return
	}
	t := time.NewTicker(logFollowPoll)
	defer t.Stop()
	for polls := 1; ; polls++ {
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
		if polls%logRescanEvery == 0 {
			for _, in := range m.logInstances(q, true) {
				if !known[in.Instance] {
					known[in.Instance] = true
					add(in, 0, true) // started while following: from its beginning
				}
			}
		}
		for _, lf := range files {
			lf.follow(bw)
		}
		if err := flush(); err != nil {
			return
		}
	}
}

// open writes the last tail lines of the file and, when following, keeps
// it open at its end (or at its start, for a file new to the stream).
func (lf *logFile) open(w io.Writer, tail int, follow, fromStart bool) {
	f, err := os.Open(lf.path)
	if err != nil {
		return // not created yet, or removed with its app: follow retries
	}
	info, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return
	}
	start := max(info.Size()-logTailWindow, 0)
	if tail > 0 {
		data := make([]byte, info.Size()-start)
		n, _ := f.ReadAt(data, start)
		data = data[:n]
		if start > 0 {
			// Drop the line cut by the window.
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				data = data[i+1:]
			}
		}
		lines := bytes.SplitAfter(data, []byte("\n"))
		if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
			lines = lines[:len(lines)-1]
		}
		for _, l := range lines[max(len(lines)-tail, 0):] {
			lf.emit(w, l)
		}
	}
	if !follow {
		_ = f.Close()
		return
	}
	at := info.Size()
	if fromStart {
		at = 0
	}
	if _, err := f.Seek(at, io.SeekStart); err != nil {
		_ = f.Close()
		return
	}
	lf.f = f
}

// follow writes what was appended since the last call. When the file was
// rotated (a new file at the path), the rest of the old one is read first.
func (lf *logFile) follow(w io.Writer) {
	if lf.f == nil {
		// A file that appeared since the last look is read from its start.
		lf.open(w, 0, true, true)
		if lf.f == nil {
			return
		}
	}
	lf.drain(w)
	cur, err1 := lf.f.Stat()
	now, err2 := os.Stat(lf.path)
	if err1 == nil && err2 == nil && !os.SameFile(cur, now) {
		_ = lf.f.Close()
		lf.f = nil
		f, err := os.Open(lf.path)
		if err != nil {
			return
		}
		lf.f = f
		lf.drain(w)
	}
}

func (lf *logFile) drain(w io.Writer) {
	chunk := make([]byte, 32<<10)
	for {
		n, err := lf.f.Read(chunk)
		data := chunk[:n]
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			end := len(data)
			if i >= 0 {
				end = i + 1
			}
			if room := logLineMax - len(lf.buf); end > room {
				// Longer than logLineMax: pass on a piece of it now.
				lf.emit(w, append(lf.buf, data[:room]...))
				lf.buf = lf.buf[:0]
				data = data[room:]
				continue
			}
			if i < 0 {
				lf.buf = append(lf.buf, data...)
				break
			}
			lf.emit(w, append(lf.buf, data[:end]...))
			lf.buf = lf.buf[:0]
			data = data[end:]
		}
		if err != nil || n == 0 {
			return
		}
	}
}

func (lf *logFile) emit(w io.Writer, line []byte) {
	_, _ = io.WriteString(w, lf.prefix)
	_, _ = w.Write(line)
	if len(line) == 0 || line[len(line)-1] != '\n' {
		_, _ = io.WriteString(w, "\n")
	}
}

// Logs streams the workload log lines q selects into w. With q.Follow it
// returns when ctx ends or the mesh closes the stream.
func (c *Client) Logs(ctx context.Context, q LogsQuery, w io.Writer) error {
	v := url.Values{"app": {q.App}}
	for k, val := range map[string]string{"node": q.Node, "instance": q.Instance, "stream": q.Stream} {
		if val != "" {
			v.Set(k, val)
		}
	}
	if q.Tail > 0 {
		v.Set("tail", strconv.Itoa(q.Tail))
	}
	if q.Follow {
		v.Set("follow", "1")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/logs?"+v.Encode(), nil)
	if err != nil {
		return fmt.Errorf("control request: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("control API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e apiError
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("logs: %s", e.Error)
		}
		return fmt.Errorf("logs: %s", resp.Status)
	}
	if _, err := io.Copy(w, resp.Body); err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs stream: %w", err)
	}
	return nil
}
