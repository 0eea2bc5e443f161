package provision

import (
	"context"
	"errors"
	"fmt"
)

// ErrConfigMissing is wrapped by failures that configuration would fix: no
// backend for a provider, a backend without its credentials, a build type
// without a build command. `mesh provision` exits 78 for them.
var ErrConfigMissing = errors.New("configuration missing")

// Backend is a hosting backend as the engine drives it: a hosting plugin
// seen through its client, or an in-process implementation in tests. Every
// call is about one site; calls for one site never overlap.
type Backend interface {
	// Observe reports what exists now for the site. It must not change
	// anything: an unchanged site costs no write.
	Observe(ctx context.Context, req Request) (State, error)
	// Plan returns the actions that take the observed state to the
	// desired one; none means the site is unchanged. It must not change
	// anything either.
	Plan(ctx context.Context, req Request, actual State) ([]Action, error)
	// Apply performs the actions and returns those it performed. Each
	// action is idempotent by its natural key: performing one whose effect
	// already exists is success.
	Apply(ctx context.Context, req Request, actions []Action) ([]Action, error)
}

// Request is what a backend is told about a site: the desired config and
// the resources the provisioner recorded as created for it by this backend.
// A backend only ever plans to delete resources listed in Owned.
type Request struct {
	Config *Config     `json:"config"`
	Owned  []Resource  `json:"owned,omitempty"`
	Plan   bool        `json:"plan,omitempty"`
	Build  *BuildSteps `json:"build,omitempty"`
}

// BuildSteps is the configured build command for the site's build type, run
// by the backend in the site's source directory before it reads the output.
type BuildSteps struct {
	Command []string `json:"command"`
}

// Resource is one thing a backend made, by its natural key (a route's host
// name, a snapshot's site, an app's name).
type Resource struct {
	Kind string `json:"kind"`
	Key  string `json:"key"`
}

// State is what a backend observed: the resources that exist, each with a
// version that changes when its content does.
type State struct {
	Resources []Observed `json:"resources,omitempty"`
}

// Observed is one existing resource.
type Observed struct {
	Resource
	Version string `json:"version,omitempty"`
}

// Action operations.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
	// OpExternal is an action no bundled backend performs (buying a
	// domain): it is shown in the plan and reported, never applied.
	OpExternal = "external"
)

// Action is one step of a plan.
type Action struct {
	Op     string `json:"op"`
	Kind   string `json:"kind"`
	Key    string `json:"key"`
	Detail string `json:"detail,omitempty"`
	// Needs names what would perform an external action.
	Needs string `json:"needs,omitempty"`
}

func (a Action) String() string { return fmt.Sprintf("%s %s %s", a.Op, a.Kind, a.Key) }

// Backends resolves the backend that hosts a provider's sites.
type Backends interface {
	// Backend returns the backend and its name for p, or an error wrapping
	// ErrConfigMissing when none is configured.
	Backend(p HostingProvider) (Backend, string, error)
}

// BackendMap is a fixed provider → backend mapping.
type BackendMap map[HostingProvider]NamedBackend

// NamedBackend is a backend and the name ownership is recorded under.
type NamedBackend struct {
	Name string
	Backend
}

// Backend implements Backends.
func (m BackendMap) Backend(p HostingProvider) (Backend, string, error) {
	nb, ok := m[p]
	if !ok || nb.Backend == nil {
		return nil, "", fmt.Errorf("%w: no hosting backend for provider %s (map it to a plugin \"hosting\" block in mesh.hcl)", ErrConfigMissing, p)
	}
	return nb.Backend, nb.Name, nil
}
