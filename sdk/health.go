package sdk

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"

	pb "github.com/mycelium-mesh/mesh/sdk/proto/pluginv1"
)

// healthClient is the host side of a health checker plugin. It implements
// HealthChecker and Remote.
type healthClient struct {
	baseClient
	client pb.HealthClient
}

// newHealthClient returns a health client on an established connection.
func newHealthClient(cc *grpc.ClientConn) *healthClient {
	return &healthClient{baseClient: baseClient{base: pb.NewBaseClient(cc)}, client: pb.NewHealthClient(cc)}
}

// Check asks the plugin to check one instance.
func (c *healthClient) Check(ctx context.Context, hc HealthCheck) (HealthResult, error) {
	r, err := c.client.Check(ctx, &pb.CheckRequest{Url: hc.URL, Path: hc.Path, TimeoutMs: hc.Timeout.Milliseconds()})
	if err != nil {
		return HealthResult{}, fmt.Errorf("health check %s: %w", hc.URL, remoteError(err))
	}
	return HealthResult{Healthy: r.Healthy, Reason: r.Reason}, nil
}

type healthServer struct {
	pb.UnimplementedHealthServer
	impl HealthChecker
}

func (s *healthServer) Check(ctx context.Context, req *pb.CheckRequest) (*pb.CheckResponse, error) {
	hc := HealthCheck{URL: req.Url, Path: req.Path, Timeout: time.Duration(req.TimeoutMs) * time.Millisecond}
	if hc.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, hc.Timeout)
		defer cancel()
	}
	r, err := s.impl.Check(ctx, hc)
	if err != nil {
		return nil, err
	}
	return &pb.CheckResponse{Healthy: r.Healthy, Reason: r.Reason}, nil
}
