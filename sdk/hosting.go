package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/mycelium-mesh/mesh/sdk/proto/pluginv1"
)

// KindHosting is the plugin kind of hosting backends (site provisioning).
const KindHosting = "hosting"

// HostingTokenEnv names the variable through which `mesh provision` gives
// the hosting plugins it starts the mesh's control token (with MESH_ADDR,
// the control address), for backends that publish sites through the mesh's
// control API. No other plugin kind is given the token.
const HostingTokenEnv = "MESH_HOSTING_TOKEN"

// ErrConfigMissing is returned (wrapped) by a hosting backend that lacks
// configuration it needs, such as credentials. The host reports the site as
// failed and `mesh provision` exits 78.
var ErrConfigMissing = errors.New("configuration missing")

// HostingBackend is a hosting plugin: it makes one site exist as described.
// The host serialises calls for one site and never calls it on the request
// path. Observe and Plan must not change anything (an unchanged site costs
// no write); every action Apply performs must be idempotent by its natural
// key, so that "already exists" is success.
type HostingBackend interface {
	Plugin
	HostingService
}

// HostingService is the hosting calls alone: what the host's client of a
// hosting plugin offers.
type HostingService interface {
	Observe(ctx context.Context, req HostingRequest) ([]HostingResource, error)
	Plan(ctx context.Context, req HostingRequest, actual []HostingResource) ([]HostingAction, error)
	// Apply performs actions in order, calling done after each one it
	// performed; it stops at the first failure and returns it.
	Apply(ctx context.Context, req HostingRequest, actions []HostingAction, done func(HostingAction)) error
}

// HostingRequest is what a backend is told about a site.
type HostingRequest struct {
	Site SiteConfig
	// Owned lists what the host recorded as created for this site by this
	// backend: the only resources a plan may delete.
	Owned []HostingResource
	// PlanOnly is set when the host will not apply (mesh provision -plan).
	PlanOnly bool
	// BuildCommand is the configured build command for the site's build
	// type, or nil (staticPrebuilt needs none).
	BuildCommand []string
}

// HostingResource is one resource of a site, by natural key. Version
// changes when its content does.
type HostingResource struct {
	Kind    string `json:"kind"`
	Key     string `json:"key"`
	Version string `json:"version,omitempty"`
}

// Hosting action operations.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// HostingAction is one step of a plan.
type HostingAction struct {
	Op     string `json:"op"`
	Kind   string `json:"kind"`
	Key    string `json:"key"`
	Detail string `json:"detail,omitempty"`
}

// SiteConfig is the desired state of a site: the SporeConfig model, already
// validated by the host (site.id a DNS label, domains host names, enums in
// range, outputDir relative and inside the site). Enums are their schema
// names ("localStatic", "staticPrebuilt"). Optional parts are nil when the
// message did not carry them.
type SiteConfig struct {
	Site     SiteInfo      `json:"site"`
	Repo     *RepoInfo     `json:"repo,omitempty"`
	Build    *BuildInfo    `json:"build,omitempty"`
	Domains  *DomainsInfo  `json:"domains,omitempty"`
	Hosting  HostingInfo   `json:"hosting"`
	DNS      *DNSInfo      `json:"dns,omitempty"`
	Purchase *PurchaseInfo `json:"purchase,omitempty"`
}

// SiteInfo names the site.
type SiteInfo struct {
	ID    string `json:"id"`
	Title string `json:"title,omitempty"`
	Kind  string `json:"kind"`
}

// RepoInfo is where the site's sources live.
type RepoInfo struct {
	Provider      string `json:"provider"`
	Slug          string `json:"slug,omitempty"`
	DefaultBranch string `json:"defaultBranch,omitempty"`
}

// BuildInfo says how the site's files are produced.
type BuildInfo struct {
	Type      string `json:"type"`
	OutputDir string `json:"outputDir,omitempty"`
	Framework string `json:"framework"`
}

// DomainsInfo are the site's host names, lower-cased.
type DomainsInfo struct {
	Primary string   `json:"primary"`
	Aliases []string `json:"aliases,omitempty"`
}

// All returns the primary domain followed by the aliases (nil-safe).
func (d *DomainsInfo) All() []string {
	if d == nil {
		return nil
	}
	return append([]string{d.Primary}, d.Aliases...)
}

// HostingInfo chooses the backend.
type HostingInfo struct {
	Provider         string `json:"provider"`
	ProjectName      string `json:"projectName,omitempty"`
	ProductionBranch string `json:"productionBranch,omitempty"`
}

// DNSInfo is the site's DNS zone.
type DNSInfo struct {
	Provider string          `json:"provider"`
	ZoneID   string          `json:"zoneId,omitempty"`
	Records  []DNSRecordInfo `json:"records,omitempty"`
}

// DNSRecordInfo is one DNS record.
type DNSRecordInfo struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
	TTL   uint32 `json:"ttl,omitempty"`
}

// PurchaseInfo asks for a domain to be registered.
type PurchaseInfo struct {
	Provider string `json:"provider"`
	Domain   string `json:"domain"`
}

// hostingPlugin is the go-plugin GRPCPlugin of the hosting kind.
type hostingPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl HostingBackend
}

// GRPCServer registers the base and hosting services.
func (p *hostingPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterBaseServer(s, &baseServer{impl: p.Impl})
	pb.RegisterHostingServer(s, &hostingServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a *hostingClient.
func (p *hostingPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return newHostingClient(cc), nil
}

// hostingClient is the host side of a hosting plugin. It implements
// HostingBackend's calls and Remote.
type hostingClient struct {
	baseClient
	client pb.HostingClient
}

// newHostingClient returns a hosting client on an established connection.
func newHostingClient(cc *grpc.ClientConn) *hostingClient {
	return &hostingClient{baseClient: baseClient{base: pb.NewBaseClient(cc)}, client: pb.NewHostingClient(cc)}
}

// Observe asks the plugin what exists for the site.
func (c *hostingClient) Observe(ctx context.Context, req HostingRequest) ([]HostingResource, error) {
	r, err := toPBRequest(req)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Observe(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("observe %s: %w", req.Site.Site.ID, hostingError(err))
	}
	return fromPBResources(resp.Resources), nil
}

// Plan asks the plugin for the actions that reach the desired state.
func (c *hostingClient) Plan(ctx context.Context, req HostingRequest, actual []HostingResource) ([]HostingAction, error) {
	r, err := toPBRequest(req)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Plan(ctx, &pb.PlanRequest{Request: r, Actual: toPBResources(actual)})
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", req.Site.Site.ID, hostingError(err))
	}
	return fromPBActions(resp.Actions), nil
}

// Apply asks the plugin to perform actions; done is called for each one
// the plugin reports performed, as it reports it.
func (c *hostingClient) Apply(ctx context.Context, req HostingRequest, actions []HostingAction, done func(HostingAction)) error {
	r, err := toPBRequest(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.client.Apply(ctx, &pb.ApplyRequest{Request: r, Actions: toPBActions(actions)})
	if err != nil {
		return fmt.Errorf("apply %s: %w", req.Site.Site.ID, hostingError(err))
	}
	for {
		ev, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("apply %s: %w", req.Site.Site.ID, hostingError(err))
		}
		if ev.Done != nil && done != nil {
			done(fromPBActions([]*pb.Action{ev.Done})[0])
		}
	}
}

type hostingServer struct {
	pb.UnimplementedHostingServer
	impl HostingBackend
}

func (s *hostingServer) Observe(ctx context.Context, r *pb.HostingRequest) (*pb.ObserveResponse, error) {
	req, err := fromPBRequest(r)
	if err != nil {
		return nil, err
	}
	res, err := s.impl.Observe(ctx, req)
	if err != nil {
		return nil, hostingStatus(err)
	}
	return &pb.ObserveResponse{Resources: toPBResources(res)}, nil
}

func (s *hostingServer) Plan(ctx context.Context, r *pb.PlanRequest) (*pb.PlanResponse, error) {
	req, err := fromPBRequest(r.Request)
	if err != nil {
		return nil, err
	}
	acts, err := s.impl.Plan(ctx, req, fromPBResources(r.Actual))
	if err != nil {
		return nil, hostingStatus(err)
	}
	return &pb.PlanResponse{Actions: toPBActions(acts)}, nil
}

func (s *hostingServer) Apply(r *pb.ApplyRequest, stream pb.Hosting_ApplyServer) error {
	req, err := fromPBRequest(r.Request)
	if err != nil {
		return err
	}
	var sendErr error
	err = s.impl.Apply(stream.Context(), req, fromPBActions(r.Actions), func(a HostingAction) {
		if sendErr == nil {
			sendErr = stream.Send(&pb.ApplyEvent{Done: toPBActions([]HostingAction{a})[0]})
		}
	})
	if err != nil {
		return hostingStatus(err)
	}
	return sendErr
}

// hostingStatus carries ErrConfigMissing across the wire as
// FailedPrecondition; other errors keep their text.
func hostingStatus(err error) error {
	if errors.Is(err, ErrConfigMissing) {
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Unknown, err.Error())
}

func hostingError(err error) error {
	if st, ok := status.FromError(err); ok && st.Code() == codes.FailedPrecondition {
		return fmt.Errorf("%s: %w", st.Message(), ErrConfigMissing)
	}
	return remoteError(err)
}

func toPBRequest(r HostingRequest) (*pb.HostingRequest, error) {
	b, err := json.Marshal(r.Site)
	if err != nil {
		return nil, fmt.Errorf("encode site %s: %w", r.Site.Site.ID, err)
	}
	return &pb.HostingRequest{SiteJson: b, Owned: toPBResources(r.Owned), Plan: r.PlanOnly, BuildCommand: r.BuildCommand}, nil
}

func fromPBRequest(r *pb.HostingRequest) (HostingRequest, error) {
	if r == nil {
		return HostingRequest{}, status.Error(codes.InvalidArgument, "no request")
	}
	var out HostingRequest
	if err := json.Unmarshal(r.SiteJson, &out.Site); err != nil {
		return out, status.Errorf(codes.InvalidArgument, "decode site: %v", err)
	}
	out.Owned = fromPBResources(r.Owned)
	out.PlanOnly = r.Plan
	out.BuildCommand = r.BuildCommand
	return out, nil
}

func toPBResources(rs []HostingResource) []*pb.Resource {
	out := make([]*pb.Resource, 0, len(rs))
	for _, r := range rs {
		out = append(out, &pb.Resource{Kind: r.Kind, Key: r.Key, Version: r.Version})
	}
	return out
}

func fromPBResources(rs []*pb.Resource) []HostingResource {
	out := make([]HostingResource, 0, len(rs))
	for _, r := range rs {
		out = append(out, HostingResource{Kind: r.Kind, Key: r.Key, Version: r.Version})
	}
	return out
}

func toPBActions(as []HostingAction) []*pb.Action {
	out := make([]*pb.Action, 0, len(as))
	for _, a := range as {
		out = append(out, &pb.Action{Op: a.Op, Kind: a.Kind, Key: a.Key, Detail: a.Detail})
	}
	return out
}

func fromPBActions(as []*pb.Action) []HostingAction {
	out := make([]HostingAction, 0, len(as))
	for _, a := range as {
		out = append(out, HostingAction{Op: a.Op, Kind: a.Kind, Key: a.Key, Detail: a.Detail})
	}
	return out
}
