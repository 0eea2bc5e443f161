package pluginhost

import (
	"context"
	"fmt"

	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/pluginclient"
)

// Hosting returns the plugin's restart-proof hosting client.
func (p *Plugin) Hosting() (sdk.HostingService, error) {
	if p.kind != sdk.KindHosting {
		return nil, fmt.Errorf("%s plugin %q is not a hosting backend: %w", p.kind, p.name, ErrWrongKind)
	}
	return hostingClient{p}, nil
}

// hostingClient calls the current process of a hosting plugin. Hosting
// calls are per site change, not per request, and may walk a whole site's
// files: they are bounded by the caller's context only, not CallTimeout.
// After a crash the next call goes to the restarted process; the engine's
// next reconcile of the site observes afresh, so nothing is lost.
type hostingClient struct{ *Plugin }

func (h hostingClient) shim() (*instance, pluginclient.Hosting, error) {
	inst, err := h.acquire()
	if err != nil {
		return nil, nil, err
	}
	return inst, inst.shim.(pluginclient.Hosting), nil
}

func (h hostingClient) Observe(ctx context.Context, req sdk.HostingRequest) ([]sdk.HostingResource, error) {
	inst, c, err := h.shim()
	if err != nil {
		return nil, err
	}
	res, err := c.Observe(ctx, req)
	if err != nil {
		return nil, h.failed(ctx, inst, err)
	}
	inst.succeeded()
	return res, nil
}

func (h hostingClient) Plan(ctx context.Context, req sdk.HostingRequest, actual []sdk.HostingResource) ([]sdk.HostingAction, error) {
	inst, c, err := h.shim()
	if err != nil {
		return nil, err
	}
	acts, err := c.Plan(ctx, req, actual)
	if err != nil {
		return nil, h.failed(ctx, inst, err)
	}
	inst.succeeded()
	return acts, nil
}

func (h hostingClient) Apply(ctx context.Context, req sdk.HostingRequest, actions []sdk.HostingAction, done func(sdk.HostingAction)) error {
	inst, c, err := h.shim()
	if err != nil {
		return err
	}
	if err := c.Apply(ctx, req, actions, done); err != nil {
		return h.failed(ctx, inst, err)
	}
	inst.succeeded()
	return nil
}
