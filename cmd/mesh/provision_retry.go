package main

import (
	"context"
	"errors"
	"time"

	"github.com/mycelium-mesh/mesh/core/pluginhost"
	"github.com/mycelium-mesh/mesh/sdk"
)

// restartWait bounds how long a hosting call waits for a crashed plugin to
// be restarted by the plugin host before the site is reported failed.
const restartWait = 5 * time.Second

// retryingHosting retries a hosting call while the plugin is down or
// restarting. Every hosting call is safe to repeat: Observe and Plan change
// nothing, and Apply's actions are idempotent by their keys.
type retryingHosting struct{ sdk.HostingService }

func retry[T any](ctx context.Context, call func() (T, error)) (T, error) {
	deadline := time.Now().Add(restartWait)
	wait := 50 * time.Millisecond
	for {
		v, err := call()
		if err == nil || !errors.Is(err, pluginhost.ErrPluginUnavailable) || time.Now().After(deadline) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(wait):
		}
		if wait < time.Second {
			wait *= 2
		}
	}
}

func (r retryingHosting) Observe(ctx context.Context, req sdk.HostingRequest) ([]sdk.HostingResource, error) {
	return retry(ctx, func() ([]sdk.HostingResource, error) { return r.HostingService.Observe(ctx, req) })
}

func (r retryingHosting) Plan(ctx context.Context, req sdk.HostingRequest, actual []sdk.HostingResource) ([]sdk.HostingAction, error) {
	return retry(ctx, func() ([]sdk.HostingAction, error) { return r.HostingService.Plan(ctx, req, actual) })
}

func (r retryingHosting) Apply(ctx context.Context, req sdk.HostingRequest, actions []sdk.HostingAction, done func(sdk.HostingAction)) error {
	_, err := retry(ctx, func() (struct{}, error) {
		return struct{}{}, r.HostingService.Apply(ctx, req, actions, done)
	})
	return err
}
