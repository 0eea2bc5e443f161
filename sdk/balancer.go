package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/grpc"

	"github.com/mycelium-mesh/mesh/sdk/internal/hostapi"
	pb "github.com/mycelium-mesh/mesh/sdk/proto/pluginv1"
)

// errStreamClosed is what Balance returns when the stream broke.
var errStreamClosed = hostapi.ErrStreamClosed

// balancerClient is the host side of a balancer plugin. It implements
// Balancer and Remote. All Balance calls share one long-lived bidirectional
// stream, opened on first use and reopened after it breaks; answers are
// matched to calls by sequence number, so concurrent calls are safe.
type balancerClient struct {
	baseClient
	client pb.BalancerClient

	sendMu sync.Mutex // serialises Send on the stream

	mu      sync.Mutex
	stream  pb.Balancer_BalanceClient
	cancel  context.CancelFunc
	pending map[uint64]chan balanceResult
	seq     uint64
	closed  bool
}

type balanceResult struct {
	policy Policy
	err    error
}

// newBalancerClient returns a balancer client on an established connection.
func newBalancerClient(cc *grpc.ClientConn) *balancerClient {
	return &balancerClient{
		baseClient: baseClient{base: pb.NewBaseClient(cc)},
		client:     pb.NewBalancerClient(cc),
		pending:    map[uint64]chan balanceResult{},
	}
}

// Balance sends s on the stream and waits for the plugin's policy or the
// end of ctx.
func (c *balancerClient) Balance(ctx context.Context, s AppState) (Policy, error) {
	ch := make(chan balanceResult, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return Policy{}, fmt.Errorf("balance %s: %w", s.App, errStreamClosed)
	}
	if c.stream == nil {
		sctx, cancel := context.WithCancel(context.Background())
		st, err := c.client.Balance(sctx)
		if err != nil {
			cancel()
			c.mu.Unlock()
			return Policy{}, fmt.Errorf("balance %s: open stream: %w", s.App, remoteError(err))
		}
		c.stream, c.cancel = st, cancel
		go c.receive(st)
	}
	st := c.stream
	c.seq++
	seq := c.seq
	c.pending[seq] = ch
	c.mu.Unlock()

	msg := &pb.AppState{Seq: seq, App: s.App}
	for _, e := range s.Endpoints {
		msg.Endpoints = append(msg.Endpoints, &pb.Endpoint{Id: e.ID, Url: e.URL, NodeId: e.NodeID})
	}
	for _, l := range s.Loads {
		msg.Loads = append(msg.Loads, &pb.EndpointLoad{Id: l.ID, InFlight: l.InFlight, Requests: l.Requests, Failures: l.Failures, LatencyEwmaUs: l.LatencyEWMA})
	}
	c.sendMu.Lock()
	err := st.Send(msg)
	c.sendMu.Unlock()
	if err != nil {
		// The receive loop sees the broken stream too and fails the
		// pending call; take the answer from there unless ctx ends first.
		if err != io.EOF {
			c.drop(seq)
			return Policy{}, fmt.Errorf("balance %s: send: %w", s.App, remoteError(err))
		}
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return Policy{}, fmt.Errorf("balance %s: %w", s.App, r.err)
		}
		return r.policy, nil
	case <-ctx.Done():
		c.drop(seq)
		return Policy{}, fmt.Errorf("balance %s: %w", s.App, ctx.Err())
	}
}

func (c *balancerClient) drop(seq uint64) {
	c.mu.Lock()
	delete(c.pending, seq)
	c.mu.Unlock()
}

// receive delivers policies to waiting calls until the stream breaks, then
// fails every pending call so none waits for an answer that cannot come.
func (c *balancerClient) receive(st pb.Balancer_BalanceClient) {
	for {
		p, err := st.Recv()
		if err != nil {
			if err == io.EOF {
				err = errStreamClosed
			} else {
				err = fmt.Errorf("%w: %w", errStreamClosed, remoteError(err))
			}
			c.mu.Lock()
			if c.stream == st {
				c.stream = nil
				c.cancel()
				for seq, ch := range c.pending {
					ch <- balanceResult{err: err}
					delete(c.pending, seq)
				}
			}
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		ch, ok := c.pending[p.Seq]
		delete(c.pending, p.Seq)
		c.mu.Unlock()
		if !ok {
			continue // the caller gave up
		}
		if p.Error != "" {
			ch <- balanceResult{err: errors.New(p.Error)}
			continue
		}
		ch <- balanceResult{policy: Policy{App: p.App, Mode: PickMode(p.Mode), Weights: p.Weights}}
	}
}

// Close ends the stream. Pending calls fail with errStreamClosed.
func (c *balancerClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.cancel != nil {
		c.cancel()
	}
	return nil
}

type balancerServer struct {
	pb.UnimplementedBalancerServer
	impl Balancer
}

// Balance answers each AppState with one Policy, in order.
func (s *balancerServer) Balance(stream pb.Balancer_BalanceServer) error {
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		st := AppState{App: msg.App}
		for _, e := range msg.Endpoints {
			st.Endpoints = append(st.Endpoints, Endpoint{ID: e.Id, URL: e.Url, NodeID: e.NodeId})
		}
		for _, l := range msg.Loads {
			st.Loads = append(st.Loads, EndpointLoad{ID: l.Id, InFlight: l.InFlight, Requests: l.Requests, Failures: l.Failures, LatencyEWMA: l.LatencyEwmaUs})
		}
		out := &pb.Policy{Seq: msg.Seq, App: msg.App}
		p, err := s.impl.Balance(stream.Context(), st)
		if err != nil {
			out.Error = err.Error()
		} else {
			out.Mode = string(p.Mode)
			out.Weights = p.Weights
			if p.App != "" {
				out.App = p.App
			}
		}
		if err := stream.Send(out); err != nil {
			return err
		}
	}
}
