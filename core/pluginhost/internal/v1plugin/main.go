// Command v1plugin is a health checker that speaks the plugin protocol as
// a plugin built with the first release of the sdk does, for the host's
// compatibility tests. It is written against the wire (go-plugin and the
// generated pluginv1 code), not package sdk, so it keeps behaving like an
// old build whatever the sdk becomes: its schema carries attributes only
// (no nested blocks), its Base service predates ValidateConfig (the
// generated stub answers UNIMPLEMENTED), and its configuration arrives as
// JSON it reads itself.
//
// Started under a name containing "v2only", it offers only plugin API
// version 2, as a plugin from a later, incompatible sdk would.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/mycelium-mesh/mesh/sdk/proto/pluginv1"
)

// handshake is the first release's handshake, written out.
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "MYCELIUM_PLUGIN",
	MagicCookieValue: "d6c1f0a2-mycelium-mesh-plugin",
}

type server struct {
	pb.UnimplementedBaseServer
	pb.UnimplementedHealthServer
	version uint32

	mu       sync.Mutex
	greeting string
}

func (s *server) GetInfo(context.Context, *pb.GetInfoRequest) (*pb.GetInfoResponse, error) {
	return &pb.GetInfoResponse{Kind: "health", Name: "old-health", Version: "0.9.0", ApiVersions: []uint32{s.version}}, nil
}

func (s *server) GetSchema(context.Context, *pb.GetSchemaRequest) (*pb.GetSchemaResponse, error) {
	return &pb.GetSchemaResponse{Attributes: []*pb.SchemaAttribute{
		{Name: "greeting", Type: "string", DefaultJson: `"hello"`},
		{Name: "names", Type: "list(string)"},
	}}, nil
}

func (s *server) Configure(_ context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	var cfg struct {
		Greeting string   `json:"greeting"`
		Names    []string `json:"names"`
	}
	if err := json.Unmarshal(req.ConfigJson, &cfg); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	s.mu.Lock()
	s.greeting = cfg.Greeting + " " + strings.Join(cfg.Names, ",")
	s.mu.Unlock()
	return &pb.ConfigureResponse{}, nil
}

func (s *server) Check(_ context.Context, req *pb.CheckRequest) (*pb.CheckResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &pb.CheckResponse{Healthy: true, Reason: s.greeting + " " + req.Url}, nil
}

// grpcPlugin serves s for go-plugin.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	s *server
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, g *grpc.Server) error {
	pb.RegisterBaseServer(g, p.s)
	pb.RegisterHealthServer(g, p.s)
	return nil
}

func (p *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, fmt.Errorf("serving only")
}

func main() {
	version := uint32(1)
	if strings.Contains(filepath.Base(os.Args[0]), "v2only") {
		version = 2
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  handshake,
		VersionedPlugins: map[int]plugin.PluginSet{int(version): {"health": &grpcPlugin{s: &server{version: version}}}},
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "old-health", Output: os.Stderr, JSONFormat: true}),
	})
}
