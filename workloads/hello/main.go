// Command hello is the sample workload: the quickstart's "billing" app.
//
// It listens on 127.0.0.1:$PORT and serves
//
//	/health   200 "ok" once ready
//	/hello    "hello from billing <VERSION> (<INSTANCE>)"
//	/blob     16 KiB of filler bytes; ?size=N asks for N bytes (at most 1 MiB)
//	anything  a small JSON echo of the method, path and query it received
//
// Its version comes from the HELLO_VERSION environment variable, which the
// spore manifest sets, so two spores of the same binary differ. Test knobs,
// also from the environment: HELLO_HEALTH=never (never answers /health),
// HELLO_HEALTH=fail (answers 500), HELLO_HEALTH_DELAY=1s (each /health
// answer takes that long), HELLO_READY_DELAY=300ms (unhealthy for a
// while after start), HELLO_EXIT_AFTER=2s (writes a FATAL line to stderr
// and exits with status 3 that long after it started listening: healthy,
// then crashing), HELLO_FORK=1 (starts a child process of itself that
// stays in hello's process group, ignores SIGTERM, SIGINT and SIGHUP and
// sleeps until it is killed; its pid is logged to stderr and served as plain
// text on GET /child, which answers 404 without HELLO_FORK). The child is
// hello re-executed with HELLO_CHILD=1; it outlives hello unless whoever
// supervises hello kills the whole group. On SIGTERM hello stops accepting,
// finishes in-flight requests and exits 0.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	if os.Getenv("HELLO_CHILD") == "1" {
		sleepForever()
	}
	port := os.Getenv("PORT")
	if port == "" {
		log.Fatal("hello: PORT is not set")
	}
	version := envOr("HELLO_VERSION", "v0")
	instance := envOr("MESH_INSTANCE", fmt.Sprintf("pid-%d", os.Getpid()))
	app := envOr("MESH_APP", "billing")
	host := envOr("HOST", "127.0.0.1")

	var readyDelay time.Duration
	if d := os.Getenv("HELLO_READY_DELAY"); d != "" {
		v, err := time.ParseDuration(d)
		if err != nil {
			log.Fatalf("hello: HELLO_READY_DELAY: %v", err)
		}
		readyDelay = v
	}
	started := time.Now()
	healthMode := os.Getenv("HELLO_HEALTH")
	var healthDelay time.Duration
	if d := os.Getenv("HELLO_HEALTH_DELAY"); d != "" {
		v, err := time.ParseDuration(d)
		if err != nil {
			log.Fatalf("hello: HELLO_HEALTH_DELAY: %v", err)
		}
		healthDelay = v
	}

	childPID := 0
	if os.Getenv("HELLO_FORK") == "1" {
		pid, err := startChild()
		if err != nil {
			log.Fatalf("hello: start child: %v", err)
		}
		childPID = pid
		log.Printf("hello: child pid %d", childPID)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/child", func(w http.ResponseWriter, r *http.Request) {
		if childPID == 0 {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, strconv.Itoa(childPID))
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if healthDelay > 0 {
			select {
			case <-time.After(healthDelay):
			case <-r.Context().Done():
				return
			}
		}
		switch {
		case healthMode == "never":
			<-r.Context().Done() // hang until the checker gives up
			return
		case healthMode == "fail":
			http.Error(w, "unhealthy on purpose", http.StatusInternalServerError)
			return
		case time.Since(started) < readyDelay:
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Hello-Version", version)
		w.Header().Set("X-Hello-Instance", instance)
		fmt.Fprintf(w, "hello from %s %s (%s)\n", app, version, instance)
	})
	mux.HandleFunc("/blob", serveBlob)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Hello-Version", version)
		w.Header().Set("X-Hello-Instance", instance)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"method":   r.Method,
			"path":     r.URL.Path,
			"raw_path": r.URL.RawPath,
			"query":    r.URL.RawQuery,
			"version":  version,
			"instance": instance,
			"headers": map[string]string{
				"X-Forwarded-For":   r.Header.Get("X-Forwarded-For"),
				"X-Forwarded-Host":  r.Header.Get("X-Forwarded-Host"),
				"X-Forwarded-Proto": r.Header.Get("X-Forwarded-Proto"),
				"X-Mycelium-Edge":   r.Header.Get("X-Mycelium-Edge"),
			},
		})
	})

	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		log.Fatalf("hello: listen: %v", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("hello %s (%s) listening on %s", version, instance, ln.Addr())

	if d := os.Getenv("HELLO_EXIT_AFTER"); d != "" {
		after, err := time.ParseDuration(d)
		if err != nil {
			log.Fatalf("hello: HELLO_EXIT_AFTER: %v", err)
		}
		time.AfterFunc(after, func() {
			log.Printf("FATAL: hello %s (%s) crashes on purpose after %s", version, instance, after)
			os.Exit(3)
		})
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case s := <-sigs:
		log.Printf("hello: %s received, shutting down", s)
		// Finish in-flight requests, but do not wait on connections that
		// never sent one: after a short drain, close whatever is left.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			log.Printf("hello: shutdown: %v; closing remaining connections", err)
			_ = srv.Close()
		}
	case err := <-done:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatalf("hello: serve: %v", err)
		}
	}
}

// blobMax bounds /blob?size=.
const blobMax = 1 << 20

// blobChunk is what /blob answers are cut from: the alphabet repeated 2520
// times (63 KiB), a whole number of alphabets, so writing it again and again
// continues the pattern. It is built on the first /blob request: an instance
// never asked for one does not carry it.
var blobChunk = sync.OnceValue(func() []byte {
	return bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz"), 2520)
})

// serveBlob answers a fixed-size body, for load scenarios that need more
// than a one-line answer: 16 KiB by default, or ?size=N bytes, in one write
// up to the chunk's size.
func serveBlob(w http.ResponseWriter, r *http.Request) {
	size := 16 << 10
	if s := r.URL.Query().Get("size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > blobMax {
			http.Error(w, fmt.Sprintf("size must be 0..%d", blobMax), http.StatusBadRequest)
			return
		}
		size = n
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(size))
	chunk := blobChunk()
	for size > 0 {
		n := min(size, len(chunk))
		if _, err := w.Write(chunk[:n]); err != nil {
			return
		}
		size -= n
	}
}

func envOr(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

// startChild re-executes this binary in child mode, in the same process
// group, and returns the child's pid. The child is reaped in the background
// should it die while hello runs.
func startChild() (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "HELLO_CHILD=1")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go func() { _ = cmd.Wait() }()
	return cmd.Process.Pid, nil
}

// sleepForever is the child mode: it ignores the polite signals and only
// ends when killed.
func sleepForever() {
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for {
		time.Sleep(time.Hour)
	}
}
