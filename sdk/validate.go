package sdk

import (
	"context"
	"encoding/json"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mycelium-mesh/mesh/sdk/internal/hostapi"
	pb "github.com/mycelium-mesh/mesh/sdk/proto/pluginv1"
)

// ConfigValidator is implemented by a plugin that can check a decoded
// configuration without applying it. `mesh validate` and `mesh plugins`
// start the plugin, decode its block against its schema and then call
// ValidateConfig, so a value the plugin itself would refuse is reported
// before `mesh run` refuses it.
//
// ValidateConfig must not change the plugin's state nor the outside world
// (no directories created, no connections made): it answers the question
// "would Configure accept this?". Reading is fine and worth it: a plugin
// whose Configure reads a file the block names (a token_file) should read
// or stat it here too, so that a missing file is reported by `mesh
// validate` rather than first by `mesh run`. A plugin whose Configure only
// parses can implement it as a Configure on a fresh value.
//
// A plugin that does not implement it is still checked against its schema;
// the host then says that the plugin itself did not look at the block.
type ConfigValidator interface {
	ValidateConfig(ctx context.Context, cfg Config) error
}

// decodeConfig decodes the JSON of a Configure or ValidateConfig request
// into the Go types the schema documents.
func (s *baseServer) decodeConfig(req *pb.ConfigureRequest) (Config, error) {
	cfg := Config{}
	if len(req.ConfigJson) > 0 {
		if err := unmarshalNumbers(req.ConfigJson, &cfg); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "decode config: %v", err)
		}
	}
	return normalizeConfig(cfg, s.impl.Schema()), nil
}

func (s *baseServer) ValidateConfig(ctx context.Context, req *pb.ConfigureRequest) (*pb.ValidateConfigResponse, error) {
	v, ok := s.impl.(ConfigValidator)
	if !ok {
		return nil, status.Errorf(codes.Unimplemented, "plugin %q does not implement sdk.ConfigValidator", s.impl.Info().Name)
	}
	cfg, err := s.decodeConfig(req)
	if err != nil {
		return nil, err
	}
	if err := v.ValidateConfig(ctx, cfg); err != nil {
		return nil, wireError(err)
	}
	return &pb.ValidateConfigResponse{}, nil
}

// ValidateConfig asks the plugin whether it would accept cfg, without
// applying it. It returns an error wrapping pluginclient.ErrNotValidated
// when the plugin cannot tell.
func (c *baseClient) ValidateConfig(ctx context.Context, cfg Config) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("validate config: encode config: %w", err)
	}
	if _, err := c.base.ValidateConfig(ctx, &pb.ConfigureRequest{ConfigJson: b}); err != nil {
		if st, ok := status.FromError(err); ok && st.Code() == codes.Unimplemented {
			return fmt.Errorf("validate config: %s: %w", st.Message(), hostapi.ErrNotValidated)
		}
		return fmt.Errorf("validate config: %w", remoteError(err))
	}
	return nil
}
