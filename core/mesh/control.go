package mesh

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/repo"
	"github.com/mycelium-mesh/mesh/core/rollout"
)

// The control API is plain HTTP+JSON:
//
//	GET  /v1/status                                Status
//	POST /v1/deploy   {"app","digest","auto_revert"} {"plan","previous","rollout"}
//	                  with Server-Timing: deploy;dur=MS, the server's time for the call
//	GET  /v1/rollouts/{id}                         rollout.Rollout
//	GET  /v1/apps/{app}/rollout                    the app's newest rollout.Rollout
//	GET  /v1/apps/{app}/history?limit=N            {"rollouts":[...]} newest first
//	POST /v1/apps/{app}/rollback {"to"}            {"plan","previous","rollout"}
//	GET  /v1/rollout?app=&digest=                  RolloutState, judged from the agents now
//	POST /v1/spores   (spore bytes)       {"digest"}: verified, then published
//	GET  /v1/spores/{digest}              the spore's bytes (HEAD: whether held)
//	POST /v1/reload   [{"plan_only","expect"}] {"notes":[...],"plan":ReloadPlan}
//	GET  /v1/logs?app=&node=&instance=&stream=&tail=&follow=   workload log lines (text)
//	GET  /v1/events?app=&tail=&follow=     events as JSON lines (EventLine), or SSE
//
// It listens on a unix socket (mode 0600) and, when configured, on a TCP
// address where every request must carry `Authorization: Bearer <token>`.
// It can start binaries, so it is never served without one of the two
// guards. The TCP address may be off loopback, for a cluster whose agents
// fetch spores from it; the API speaks plain HTTP, so such an address
// belongs on a private network.

// maxSporeUpload bounds one uploaded spore.
const maxSporeUpload = 4 << 30

type controlServer struct {
	// ctx ends when the server closes, so streams that follow (logs,
	// events) end then instead of holding the shutdown up.
	ctx     context.Context
	cancel  context.CancelFunc
	servers []*http.Server
	addrs   []string
	socket  string
}

func startControl(m *Mesh, cc config.ControlConfig) (*controlServer, error) {
	cs := &controlServer{}
	cs.ctx, cs.cancel = context.WithCancel(context.Background())
	if cc.Socket != "" {
		if err := os.MkdirAll(filepath.Dir(cc.Socket), 0o700); err != nil {
			return nil, fmt.Errorf("control socket dir: %w", err)
		}
		if err := removeStaleSocket(cc.Socket); err != nil {
			return nil, err
		}
		ln, err := listenPrivateSocket(cc.Socket)
		if err != nil {
			return nil, err
		}
		cs.socket = cc.Socket
		cs.serve(ln, m.controlHandler(""), "unix://"+cc.Socket)
	}
	if cc.Listen != "" {
		if cc.Token == "" {
			cs.close()
			return nil, errors.New("control: a TCP listener needs a token")
		}
		// Off loopback (agents on other hosts fetch spores here) the
		// token guards every route; the file's validation warned that it
		// crosses the network in clear text.
		ln, err := net.Listen("tcp", cc.Listen)
		if err != nil {
			cs.close()
			return nil, fmt.Errorf("control listener: %w", err)
		}
		cs.serve(ln, m.controlHandler(cc.Token), "http://"+ln.Addr().String())
	}
	return cs, nil
}

// listenPrivateSocket listens on a unix socket that only its owner can
// connect to. The socket is bound under a temporary name, restricted to 0600
// and only then renamed into place, so there is no moment when the final path
// accepts anyone else.
func listenPrivateSocket(path string) (net.Listener, error) {
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	_ = os.Remove(tmp)
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("control socket permissions: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// removeStaleSocket removes a socket file left by a mesh that is gone, and
// refuses to take over one that still answers.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("control socket: %s exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return fmt.Errorf("control socket: %s is in use by another mesh", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("control socket: remove stale %s: %w", path, err)
	}
	return nil
}

func (cs *controlServer) serve(ln net.Listener, h http.Handler, addr string) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ConnContext: connCaller,
		BaseContext: func(net.Listener) context.Context { return cs.ctx }}
	cs.servers = append(cs.servers, srv)
	cs.addrs = append(cs.addrs, addr)
	go func() { _ = srv.Serve(ln) }()
}

func (cs *controlServer) describe() string { return strings.Join(cs.addrs, ",") }

func (cs *controlServer) close() {
	cs.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range cs.servers {
		_ = s.Shutdown(ctx)
	}
	if cs.socket != "" {
		_ = os.Remove(cs.socket)
	}
}

type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// serverTiming is a Server-Timing header value: name took d, in
// milliseconds.
func serverTiming(name string, d time.Duration) string {
	return name + ";dur=" + strconv.FormatFloat(float64(d.Nanoseconds())/1e6, 'f', 3, 64)
}

func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrUnknownApp), errors.Is(err, repo.ErrNotFound), errors.Is(err, rollout.ErrNotFound), errors.Is(err, ErrNoTarget):
		code = http.StatusNotFound
	case errors.Is(err, repo.ErrBadDigest):
		code = http.StatusBadRequest
	case errors.Is(err, ErrPlanChanged), errors.Is(err, fabric.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, ErrRefused):
		code = http.StatusUnprocessableEntity
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		code = http.StatusUnprocessableEntity
	}
	writeJSON(w, code, apiError{Error: err.Error()})
}

func (m *Mesh) controlHandler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, m.Status())
	})
	mux.HandleFunc("POST /v1/deploy", func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		var req DeployRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "decode request: " + err.Error()})
			return
		}
		req.Who = caller(r.Context(), token != "")
		res, err := m.StartRollout(r.Context(), req)
		w.Header().Set("Server-Timing", serverTiming("deploy", time.Since(t0)))
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("GET /v1/rollout", func(w http.ResponseWriter, r *http.Request) {
		rs, err := m.Rollout(r.URL.Query().Get("app"), r.URL.Query().Get("digest"))
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, rs)
	})
	mux.HandleFunc("GET /v1/rollouts/{id}", func(w http.ResponseWriter, r *http.Request) {
		ro, err := m.RolloutByID(r.PathValue("id"))
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, ro)
	})
	mux.HandleFunc("GET /v1/apps/{app}/rollout", func(w http.ResponseWriter, r *http.Request) {
		h, err := m.History(r.PathValue("app"), 1)
		if err == nil && len(h) == 0 {
			err = fmt.Errorf("%w: app %q has none", rollout.ErrNotFound, r.PathValue("app"))
		}
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, h[0])
	})
	mux.HandleFunc("GET /v1/apps/{app}/history", func(w http.ResponseWriter, r *http.Request) {
		n := 0
		if v := r.URL.Query().Get("limit"); v != "" {
			var err error
			if n, err = strconv.Atoi(v); err != nil || n < 0 {
				writeJSON(w, http.StatusBadRequest, apiError{Error: fmt.Sprintf("limit %q: want a number >= 0", v)})
				return
			}
		}
		h, err := m.History(r.PathValue("app"), n)
		if err != nil {
			writeErr(w, err)
			return
		}
		if h == nil {
			h = []rollout.Rollout{}
		}
		writeJSON(w, http.StatusOK, HistoryResponse{SchemaVersion: SchemaVersion, Rollouts: h})
	})
	mux.HandleFunc("POST /v1/apps/{app}/rollback", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			To string `json:"to"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "decode request: " + err.Error()})
			return
		}
		res, err := m.Rollback(r.Context(), r.PathValue("app"), req.To, caller(r.Context(), token != ""))
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("POST /v1/spores", func(w http.ResponseWriter, r *http.Request) {
		tmp, err := os.CreateTemp(m.Config().DataDir, ".upload-*.spore")
		if err != nil {
			writeErr(w, fmt.Errorf("store upload: %w", err))
			return
		}
		defer os.Remove(tmp.Name())
		n, err := io.Copy(tmp, io.LimitReader(r.Body, maxSporeUpload+1))
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			writeErr(w, fmt.Errorf("receive spore: %w", err))
			return
		}
		if n > maxSporeUpload {
			writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Error: "spore larger than 4 GiB"})
			return
		}
		d, err := m.Publish(tmp.Name())
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"digest": d})
	})
	mux.HandleFunc("GET /v1/logs", m.handleLogs)
	mux.HandleFunc("GET /v1/events", m.handleEvents)
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		var opts ReloadOptions
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&opts); err != nil && !errors.Is(err, io.EOF) {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "decode reload request: " + err.Error()})
			return
		}
		rp, err := m.ReloadWith(r.Context(), opts)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, reloadResponse{SchemaVersion: SchemaVersion, Notes: rp.Restart, Plan: rp})
	})
	m.sporeRoutes(mux)          // the repo, for agents on other hosts, see sporeserve.go
	m.siteRoutes(mux)           // static sites, see sites.go
	m.siteAppRoutes(mux, token) // apps owned by sites, see siteapps.go
	if token == "" {
		return mux
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mesh"`)
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "missing or wrong bearer token"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}
