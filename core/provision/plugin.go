package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mycelium-mesh/mesh/sdk"
)

// PluginBackend drives a hosting plugin (through its sdk client) as a
// Backend. The model crosses to the plugin as sdk.SiteConfig, whose JSON
// form is the model's.
type PluginBackend struct {
	Service sdk.HostingService
}

func toSDKRequest(req Request) (sdk.HostingRequest, error) {
	var out sdk.HostingRequest
	b, err := json.Marshal(req.Config)
	if err != nil {
		return out, fmt.Errorf("encode site %s: %w", req.Config.Site.ID, err)
	}
	if err := json.Unmarshal(b, &out.Site); err != nil {
		return out, fmt.Errorf("encode site %s: %w", req.Config.Site.ID, err)
	}
	for _, r := range req.Owned {
		out.Owned = append(out.Owned, sdk.HostingResource{Kind: r.Kind, Key: r.Key})
	}
	out.PlanOnly = req.Plan
	if req.Build != nil {
		out.BuildCommand = req.Build.Command
	}
	return out, nil
}

// configMissing keeps the plugin's "configuration missing" recognisable.
func configMissing(err error) error {
	if errors.Is(err, sdk.ErrConfigMissing) && !errors.Is(err, ErrConfigMissing) {
		return fmt.Errorf("%w: %w", ErrConfigMissing, err)
	}
	return err
}

// Observe implements Backend.
func (p PluginBackend) Observe(ctx context.Context, req Request) (State, error) {
	r, err := toSDKRequest(req)
	if err != nil {
		return State{}, err
	}
	res, err := p.Service.Observe(ctx, r)
	if err != nil {
		return State{}, configMissing(err)
	}
	var st State
	for _, o := range res {
		st.Resources = append(st.Resources, Observed{Resource: Resource{Kind: o.Kind, Key: o.Key}, Version: o.Version})
	}
	return st, nil
}

// Plan implements Backend.
func (p PluginBackend) Plan(ctx context.Context, req Request, actual State) ([]Action, error) {
	r, err := toSDKRequest(req)
	if err != nil {
		return nil, err
	}
	var obs []sdk.HostingResource
	for _, o := range actual.Resources {
		obs = append(obs, sdk.HostingResource{Kind: o.Kind, Key: o.Key, Version: o.Version})
	}
	acts, err := p.Service.Plan(ctx, r, obs)
	if err != nil {
		return nil, configMissing(err)
	}
	out := make([]Action, 0, len(acts))
	for _, a := range acts {
		out = append(out, Action{Op: a.Op, Kind: a.Kind, Key: a.Key, Detail: a.Detail})
	}
	return out, nil
}

// Apply implements Backend: the actions the plugin reports performed are
// returned even when a later one fails, so ownership is recorded for them.
func (p PluginBackend) Apply(ctx context.Context, req Request, actions []Action) ([]Action, error) {
	r, err := toSDKRequest(req)
	if err != nil {
		return nil, err
	}
	in := make([]sdk.HostingAction, 0, len(actions))
	for _, a := range actions {
		in = append(in, sdk.HostingAction{Op: a.Op, Kind: a.Kind, Key: a.Key, Detail: a.Detail})
	}
	var done []Action
	err = p.Service.Apply(ctx, r, in, func(a sdk.HostingAction) {
		done = append(done, Action{Op: a.Op, Kind: a.Kind, Key: a.Key, Detail: a.Detail})
	})
	return done, configMissing(err)
}
