package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mycelium-mesh/mesh/sdk/internal/hostapi"
	pb "github.com/mycelium-mesh/mesh/sdk/proto/pluginv1"
)

// supportedAPIVersions lists the plugin API versions this sdk implements.
var supportedAPIVersions = hostapi.APIVersions

// ChunkSize is the largest data payload of one repo stream message.
const ChunkSize = 64 << 10

// defaultCallTimeout bounds Info and Schema, which take no context.
const defaultCallTimeout = 5 * time.Second

func init() {
	hostapi.ClientPluginSet = clientPluginSet
	hostapi.ServerPluginSet = func(impl any) (plugin.PluginSet, error) {
		p, ok := impl.(Plugin)
		if !ok {
			return nil, fmt.Errorf("%T is not an sdk.Plugin", impl)
		}
		return serverPluginSet(p)
	}
}

// clientPluginSet is the go-plugin set a host dispenses from: one entry per
// plugin kind, keyed by the Kind* constants.
func clientPluginSet() plugin.PluginSet {
	return plugin.PluginSet{
		KindRepo:     &repoPlugin{},
		KindBalancer: &balancerPlugin{},
		KindHealth:   &healthPlugin{},
		KindHosting:  &hostingPlugin{},
	}
}

// serverPluginSet returns the go-plugin set that serves impl: a single
// entry for the kind impl.Info() declares. It fails when impl does not
// implement the interface of that kind.
func serverPluginSet(impl Plugin) (plugin.PluginSet, error) {
	info := impl.Info()
	switch info.Kind {
	case KindRepo:
		r, ok := impl.(RepoBackend)
		if !ok {
			return nil, fmt.Errorf("plugin %q declares kind %q but does not implement sdk.RepoBackend", info.Name, info.Kind)
		}
		return plugin.PluginSet{KindRepo: &repoPlugin{Impl: r}}, nil
	case KindBalancer:
		b, ok := impl.(Balancer)
		if !ok {
			return nil, fmt.Errorf("plugin %q declares kind %q but does not implement sdk.Balancer", info.Name, info.Kind)
		}
		return plugin.PluginSet{KindBalancer: &balancerPlugin{Impl: b}}, nil
	case KindHealth:
		h, ok := impl.(HealthChecker)
		if !ok {
			return nil, fmt.Errorf("plugin %q declares kind %q but does not implement sdk.HealthChecker", info.Name, info.Kind)
		}
		return plugin.PluginSet{KindHealth: &healthPlugin{Impl: h}}, nil
	case KindHosting:
		h, ok := impl.(HostingBackend)
		if !ok {
			return nil, fmt.Errorf("plugin %q declares kind %q but does not implement sdk.HostingBackend", info.Name, info.Kind)
		}
		return plugin.PluginSet{KindHosting: &hostingPlugin{Impl: h}}, nil
	}
	return nil, fmt.Errorf("plugin %q declares unknown kind %q (want %s, %s, %s or %s)", info.Name, info.Kind, KindRepo, KindBalancer, KindHealth, KindHosting)
}

// repoPlugin is the go-plugin GRPCPlugin of the repo kind. Impl is set on
// the plugin side only.
type repoPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl RepoBackend
}

// GRPCServer registers the base and repo services.
func (p *repoPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterBaseServer(s, &baseServer{impl: p.Impl})
	pb.RegisterRepoServer(s, &repoServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a *repoClient.
func (p *repoPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return newRepoClient(cc), nil
}

// balancerPlugin is the go-plugin GRPCPlugin of the balancer kind.
type balancerPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Balancer
}

// GRPCServer registers the base and balancer services.
func (p *balancerPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterBaseServer(s, &baseServer{impl: p.Impl})
	pb.RegisterBalancerServer(s, &balancerServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a *balancerClient.
func (p *balancerPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return newBalancerClient(cc), nil
}

// healthPlugin is the go-plugin GRPCPlugin of the health kind.
type healthPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl HealthChecker
}

// GRPCServer registers the base and health services.
func (p *healthPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterBaseServer(s, &baseServer{impl: p.Impl})
	pb.RegisterHealthServer(s, &healthServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a *healthClient.
func (p *healthPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return newHealthClient(cc), nil
}

// baseServer serves the Base service for any kind.
type baseServer struct {
	pb.UnimplementedBaseServer
	impl Plugin
}

func (s *baseServer) GetInfo(context.Context, *pb.GetInfoRequest) (*pb.GetInfoResponse, error) {
	i := s.impl.Info()
	vs := i.APIVersions
	if len(vs) == 0 {
		vs = supportedAPIVersions
	}
	return &pb.GetInfoResponse{Kind: i.Kind, Name: i.Name, Version: i.Version, ApiVersions: vs}, nil
}

func (s *baseServer) GetSchema(context.Context, *pb.GetSchemaRequest) (*pb.GetSchemaResponse, error) {
	attrs, blocks, err := schemaToWire(s.impl.Schema())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	return &pb.GetSchemaResponse{Attributes: attrs, Blocks: blocks}, nil
}

// schemaToWire encodes a schema, nested blocks included.
func schemaToWire(sc Schema) ([]*pb.SchemaAttribute, []*pb.SchemaBlock, error) {
	var attrs []*pb.SchemaAttribute
	for _, a := range sc.Attributes {
		pa := &pb.SchemaAttribute{Name: a.Name, Type: string(a.Type), Required: a.Required, Description: a.Description,
			Min: a.Min, Max: a.Max, OneOf: a.OneOf}
		if a.Default != nil {
			b, err := json.Marshal(a.Default)
			if err != nil {
				return nil, nil, fmt.Errorf("encode default of %q: %w", a.Name, err)
			}
			pa.DefaultJson = string(b)
		}
		attrs = append(attrs, pa)
	}
	var blocks []*pb.SchemaBlock
	for _, b := range sc.Blocks {
		ba, bb, err := schemaToWire(b.Schema)
		if err != nil {
			return nil, nil, fmt.Errorf("block %q: %w", b.Name, err)
		}
		blocks = append(blocks, &pb.SchemaBlock{Name: b.Name, Description: b.Description, Repeated: b.Repeated,
			Required: b.Required, Attributes: ba, Blocks: bb})
	}
	return attrs, blocks, nil
}

// schemaFromWire decodes what schemaToWire encoded.
func schemaFromWire(attrs []*pb.SchemaAttribute, blocks []*pb.SchemaBlock) (Schema, error) {
	var s Schema
	for _, a := range attrs {
		attr := Attribute{Name: a.Name, Type: AttrType(a.Type), Required: a.Required, Description: a.Description,
			Min: a.Min, Max: a.Max, OneOf: a.OneOf}
		if a.DefaultJson != "" {
			var v any
			if err := unmarshalNumbers([]byte(a.DefaultJson), &v); err != nil {
				return Schema{}, fmt.Errorf("default of %q: %w", a.Name, err)
			}
			if n, ok := normalizeValue(attr.Type, v); ok {
				v = n
			}
			attr.Default = v
		}
		s.Attributes = append(s.Attributes, attr)
	}
	for _, b := range blocks {
		sub, err := schemaFromWire(b.Attributes, b.Blocks)
		if err != nil {
			return Schema{}, fmt.Errorf("block %q: %w", b.Name, err)
		}
		s.Blocks = append(s.Blocks, Block{Name: b.Name, Description: b.Description, Repeated: b.Repeated,
			Required: b.Required, Schema: sub})
	}
	return s, nil
}

// unmarshalNumbers is json.Unmarshal keeping numbers as json.Number, so
// that large whole numbers arrive exact.
func unmarshalNumbers(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

func (s *baseServer) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	cfg, err := s.decodeConfig(req)
	if err != nil {
		return nil, err
	}
	if err := s.impl.Configure(ctx, cfg); err != nil {
		return nil, wireError(err)
	}
	return &pb.ConfigureResponse{}, nil
}

// baseClient implements the base calls on the client side.
type baseClient struct {
	base pb.BaseClient
}

// GetInfo asks the plugin what it is.
func (c *baseClient) GetInfo(ctx context.Context) (Info, error) {
	r, err := c.base.GetInfo(ctx, &pb.GetInfoRequest{})
	if err != nil {
		return Info{}, fmt.Errorf("get info: %w", remoteError(err))
	}
	return Info{Kind: r.Kind, Name: r.Name, Version: r.Version, APIVersions: r.ApiVersions}, nil
}

// GetSchema asks the plugin for its config schema.
func (c *baseClient) GetSchema(ctx context.Context) (Schema, error) {
	r, err := c.base.GetSchema(ctx, &pb.GetSchemaRequest{})
	if err != nil {
		return Schema{}, fmt.Errorf("get schema: %w", remoteError(err))
	}
	s, err := schemaFromWire(r.Attributes, r.Blocks)
	if err != nil {
		return Schema{}, fmt.Errorf("get schema: %w", err)
	}
	return s, nil
}

// Configure sends the decoded configuration to the plugin.
func (c *baseClient) Configure(ctx context.Context, cfg Config) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("configure: encode config: %w", err)
	}
	if _, err := c.base.Configure(ctx, &pb.ConfigureRequest{ConfigJson: b}); err != nil {
		return fmt.Errorf("configure: %w", remoteError(err))
	}
	return nil
}

// Info calls GetInfo with defaultCallTimeout; it returns the zero Info when
// the plugin does not answer.
func (c *baseClient) Info() Info {
	ctx, cancel := context.WithTimeout(context.Background(), defaultCallTimeout)
	defer cancel()
	i, _ := c.GetInfo(ctx)
	return i
}

// Schema calls GetSchema with defaultCallTimeout; it returns an empty schema
// when the plugin does not answer.
func (c *baseClient) Schema() Schema {
	ctx, cancel := context.WithTimeout(context.Background(), defaultCallTimeout)
	defer cancel()
	s, _ := c.GetSchema(ctx)
	return s
}

// remoteError turns a gRPC status into a plain error carrying the plugin's
// message. Deadline and cancellation map onto the context errors so
// callers can test them with errors.Is; transport failures keep their
// status so callers can tell an unreachable plugin apart.
func remoteError(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if ae, ok := attributeErrorOf(st); ok {
		return ae
	}
	switch st.Code() {
	case codes.Unknown:
		return errors.New(st.Message())
	case codes.DeadlineExceeded:
		return withCause(st.Message(), context.DeadlineExceeded)
	case codes.Canceled:
		return withCause(st.Message(), context.Canceled)
	}
	return err
}

// withCause returns cause, prefixed with msg when msg says more than cause
// itself does (gRPC's message for a context error is often just its text).
func withCause(msg string, cause error) error {
	if msg == "" || msg == cause.Error() {
		return cause
	}
	return fmt.Errorf("%s: %w", msg, cause)
}
