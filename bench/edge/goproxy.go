package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mycelium-mesh/mesh/core/edge"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/pluginhost"
	"github.com/mycelium-mesh/mesh/sdk"
)

// The Go proxies under test run as this binary re-executed in proxy mode,
// so each is a process of its own, pinned and measured like nginx.

// proxyMain serves one proxy under test until SIGTERM. It prints
// "LISTEN addr [note]" once it accepts connections.
func proxyMain(args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	kind := fs.String("kind", "", "baseline, edge-rr or edge-ll")
	eps := fs.String("endpoints", "", "comma-separated endpoint URLs")
	mesh := fs.String("mesh", "", "mesh binary serving bundled plugins")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the proxy to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *profile != "" {
		pf, err := os.Create(*profile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			pf.Close()
		}()
	}
	urls := strings.Split(*eps, ",")
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	switch *kind {
	case "baseline":
		return serveBaseline(urls, sigs)
	case "edge-rr":
		return serveEdge(urls, "round-robin", *mesh, sigs)
	case "edge-ll":
		return serveEdge(urls, "least-loaded", *mesh, sigs)
	}
	return fmt.Errorf("unknown proxy kind %q", *kind)
}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(v []byte) { b.p.Put(&v) }

// serveBaseline is the reference: httputil.ReverseProxy with a tuned
// transport, a copy-buffer pool and round-robin over the endpoints.
func serveBaseline(urls []string, sigs <-chan os.Signal) error {
	targets := make([]*url.URL, len(urls))
	for i, u := range urls {
		t, err := url.Parse(u)
		if err != nil {
			return err
		}
		targets[i] = t
	}
	var next atomic.Uint64
	pool := &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := targets[(next.Add(1)-1)%uint64(len(targets))]
			pr.SetURL(t)
			pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, "/billing")
			pr.Out.URL.RawPath = ""
			pr.SetXForwarded()
		},
		Transport: &http.Transport{
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
		BufferPool: pool,
		// A client that hangs up when wrk stops is not news; a real
		// upstream failure still reaches wrk as a 502 and counts there.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Printf("LISTEN %s\n", ln.Addr())
	<-sigs
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

// serveEdge runs the mesh edge with the named bundled balancer loaded out
// of process through pluginhost.
func serveEdge(urls []string, balancer, mesh string, sigs <-chan os.Signal) error {
	log := hclog.New(&hclog.LoggerOptions{Name: "bench", Output: os.Stderr, Level: hclog.Warn})
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx := context.Background()
	load := func(exe string) (*pluginhost.Host, sdk.Balancer, error) {
		host, err := pluginhost.New(pluginhost.Options{Logger: log, SelfExe: exe})
		if err != nil {
			return nil, nil, err
		}
		bal, err := host.Balancer(ctx, pluginhost.Spec{Kind: sdk.KindBalancer, Name: balancer})
		if err != nil {
			host.Close()
			return nil, nil, err
		}
		return host, bal, nil
	}
	note := ""
	exe := self
	if mesh != "" {
		exe = mesh
	}
	host, bal, err := load(exe)
	if err != nil && mesh != "" {
		log.Warn("mesh binary cannot serve the plugin; serving it from this binary", "mesh", mesh, "error", err)
		note = "plugin served by the bench binary"
		host, bal, err = load(self)
	}
	if err != nil {
		return fmt.Errorf("load balancer plugin %s: %w", balancer, err)
	}
	defer host.Close()

	f, err := fabric.New(fabric.Options{Logger: log})
	if err != nil {
		return err
	}
	defer f.Close()
	for i, u := range urls {
		f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: u, NodeID: fmt.Sprintf("node-%d", i+1)})
	}
	e, err := edge.New(edge.Options{
		Source:    f,
		Balancers: func(string) edge.Balancer { return bal },
		Logger:    log,
	})
	if err != nil {
		return err
	}
	if err := e.Start("127.0.0.1:0"); err != nil {
		return err
	}
	fmt.Printf("LISTEN %s %s\n", e.Addr(), note)
	<-sigs
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return e.Shutdown(sctx)
}
