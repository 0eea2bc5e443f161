package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/pluginclient"
)

// isTransport reports errors that mean the plugin process or its
// connection is gone rather than that the plugin answered with an error.
func isTransport(err error) bool {
	if errors.Is(err, pluginclient.ErrStreamClosed) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable:
		return true
	}
	return false
}

// Balancer returns the plugin's restart-proof balancer client.
func (p *Plugin) Balancer() (sdk.Balancer, error) {
	if p.kind != sdk.KindBalancer {
		return nil, fmt.Errorf("%s plugin %q is not a balancer: %w", p.kind, p.name, ErrWrongKind)
	}
	return balancerClient{p}, nil
}

// Health returns the plugin's restart-proof health checker client.
func (p *Plugin) Health() (sdk.HealthChecker, error) {
	if p.kind != sdk.KindHealth {
		return nil, fmt.Errorf("%s plugin %q is not a health checker: %w", p.kind, p.name, ErrWrongKind)
	}
	return healthClient{p}, nil
}

// Repo returns the plugin's restart-proof repo backend client.
func (p *Plugin) Repo() (sdk.RepoBackend, error) {
	if p.kind != sdk.KindRepo {
		return nil, fmt.Errorf("%s plugin %q is not a repo backend: %w", p.kind, p.name, ErrWrongKind)
	}
	return repoClient{p}, nil
}

// balancerClient sends each AppState on the current process's stream;
// after a restart the next call opens a stream to the new process.
type balancerClient struct{ *Plugin }

func (b balancerClient) Balance(ctx context.Context, s sdk.AppState) (sdk.Policy, error) {
	inst, err := b.acquire()
	if err != nil {
		return sdk.Policy{}, err
	}
	cctx, cancel := b.callContext(ctx)
	defer cancel()
	pol, err := inst.shim.(pluginclient.Balancer).Balance(cctx, s)
	if err != nil {
		return sdk.Policy{}, b.failed(ctx, inst, err)
	}
	inst.succeeded()
	return pol, nil
}

type healthClient struct{ *Plugin }

// Check runs one check. Its deadline is the check's own timeout plus the
// host's CallTimeout, so a slow check is reported by the plugin, not cut
// short by the transport.
func (h healthClient) Check(ctx context.Context, c sdk.HealthCheck) (sdk.HealthResult, error) {
	inst, err := h.acquire()
	if err != nil {
		return sdk.HealthResult{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, c.Timeout+h.h.opts.CallTimeout)
	defer cancel()
	res, err := inst.shim.(pluginclient.Health).Check(cctx, c)
	if err != nil {
		return sdk.HealthResult{}, h.failed(ctx, inst, err)
	}
	inst.succeeded()
	return res, nil
}

type repoClient struct{ *Plugin }

// Put streams r to the backend. Streams carry no overall deadline (a blob
// may be large); they end with ctx or when the plugin dies.
func (r repoClient) Put(ctx context.Context, digest string, rd io.Reader) error {
	inst, err := r.acquire()
	if err != nil {
		return err
	}
	if err := inst.shim.(pluginclient.Repo).Put(ctx, digest, rd); err != nil {
		return r.failed(ctx, inst, err)
	}
	return nil
}

// Get opens the blob's stream; the first answer (found or not) is bounded
// by CallTimeout, the data that follows only by ctx.
func (r repoClient) Get(ctx context.Context, digest string) (io.ReadCloser, bool, error) {
	inst, err := r.acquire()
	if err != nil {
		return nil, false, err
	}
	type result struct {
		rc    io.ReadCloser
		found bool
		err   error
	}
	sctx, scancel := context.WithCancel(ctx)
	ch := make(chan result, 1)
	go func() {
		rc, found, err := inst.shim.(pluginclient.Repo).Get(sctx, digest)
		ch <- result{rc, found, err}
	}()
	timer := time.NewTimer(r.h.opts.CallTimeout)
	defer timer.Stop()
	select {
	case res := <-ch:
		if res.err != nil {
			scancel()
			return nil, false, r.failed(ctx, inst, res.err)
		}
		if !res.found {
			scancel()
			return nil, false, nil
		}
		return &cancelOnClose{ReadCloser: res.rc, cancel: scancel}, true, nil
	case <-timer.C:
		scancel()
		return nil, false, r.failed(ctx, inst, fmt.Errorf("get %s: no answer within %s: %w", digest, r.h.opts.CallTimeout, context.DeadlineExceeded))
	}
}

func (r repoClient) Has(ctx context.Context, digest string) (bool, error) {
	inst, err := r.acquire()
	if err != nil {
		return false, err
	}
	cctx, cancel := r.callContext(ctx)
	defer cancel()
	ok, err := inst.shim.(pluginclient.Repo).Has(cctx, digest)
	if err != nil {
		return false, r.failed(ctx, inst, err)
	}
	inst.succeeded()
	return ok, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
