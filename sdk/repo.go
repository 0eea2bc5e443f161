package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/mycelium-mesh/mesh/sdk/proto/pluginv1"
)

// repoClient is the host side of a repo backend plugin. It implements
// RepoBackend and Remote. Blobs travel in chunks of at most ChunkSize.
type repoClient struct {
	baseClient
	client pb.RepoClient
}

// newRepoClient returns a repo client on an established connection.
func newRepoClient(cc *grpc.ClientConn) *repoClient {
	return &repoClient{baseClient: baseClient{base: pb.NewBaseClient(cc)}, client: pb.NewRepoClient(cc)}
}

// Put streams r to the plugin under digest.
func (c *repoClient) Put(ctx context.Context, digest string, r io.Reader) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.client.Put(ctx)
	if err != nil {
		return fmt.Errorf("put %s: %w", digest, remoteError(err))
	}
	buf := make([]byte, ChunkSize)
	first := true
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 || first {
			msg := &pb.PutRequest{Data: buf[:n]}
			if first {
				msg.Digest = digest
				first = false
			}
			if err := stream.Send(msg); err != nil {
				// The real cause comes with CloseAndRecv.
				_, err = stream.CloseAndRecv()
				return fmt.Errorf("put %s: %w", digest, remoteError(err))
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("put %s: read blob: %w", digest, rerr)
		}
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		return fmt.Errorf("put %s: %w", digest, remoteError(err))
	}
	return nil
}

// Get opens a stream for the blob. found is false when the backend does
// not have it. Closing the reader ends the stream.
func (c *repoClient) Get(ctx context.Context, digest string) (io.ReadCloser, bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.client.Get(ctx, &pb.GetRequest{Digest: digest})
	if err != nil {
		cancel()
		return nil, false, fmt.Errorf("get %s: %w", digest, remoteError(err))
	}
	first, err := stream.Recv()
	if err != nil {
		cancel()
		if err == io.EOF {
			return nil, false, fmt.Errorf("get %s: plugin closed the stream without an answer", digest)
		}
		return nil, false, fmt.Errorf("get %s: %w", digest, remoteError(err))
	}
	if !first.Found {
		cancel()
		return nil, false, nil
	}
	return &chunkReader{stream: stream, cancel: cancel, buf: first.Data, digest: digest}, true, nil
}

// Has asks whether the backend holds digest.
func (c *repoClient) Has(ctx context.Context, digest string) (bool, error) {
	r, err := c.client.Has(ctx, &pb.HasRequest{Digest: digest})
	if err != nil {
		return false, fmt.Errorf("has %s: %w", digest, remoteError(err))
	}
	return r.Found, nil
}

// chunkReader reads a Get stream as a byte stream.
type chunkReader struct {
	stream pb.Repo_GetClient
	cancel context.CancelFunc
	buf    []byte
	digest string
	err    error
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		msg, err := r.stream.Recv()
		if err == io.EOF {
			r.err = io.EOF
			continue
		}
		if err != nil {
			r.err = fmt.Errorf("get %s: %w", r.digest, remoteError(err))
			continue
		}
		r.buf = msg.Data
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *chunkReader) Close() error {
	r.cancel()
	if r.err == nil {
		r.err = errors.New("read after close")
	}
	return nil
}

type repoServer struct {
	pb.UnimplementedRepoServer
	impl RepoBackend
}

func (s *repoServer) Put(stream pb.Repo_PutServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if first.Digest == "" {
		return status.Error(codes.InvalidArgument, "put: first message carries no digest")
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := s.impl.Put(stream.Context(), first.Digest, pr)
		// Unblock the feeder if Put returned before reading everything.
		pr.CloseWithError(errors.New("backend stopped reading"))
		done <- err
	}()
	feed := func() error {
		if _, err := pw.Write(first.Data); err != nil {
			return nil
		}
		for {
			msg, err := stream.Recv()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if len(msg.Data) > ChunkSize {
				return status.Errorf(codes.InvalidArgument, "put: chunk of %d bytes exceeds %d", len(msg.Data), ChunkSize)
			}
			if _, err := pw.Write(msg.Data); err != nil {
				return nil // the backend stopped reading; its error wins
			}
		}
	}
	if ferr := feed(); ferr != nil {
		pw.CloseWithError(ferr)
		<-done
		return ferr
	}
	pw.Close()
	if err := <-done; err != nil {
		return err
	}
	return stream.SendAndClose(&pb.PutResponse{})
}

func (s *repoServer) Get(req *pb.GetRequest, stream pb.Repo_GetServer) error {
	rc, found, err := s.impl.Get(stream.Context(), req.Digest)
	if err != nil {
		return err
	}
	if !found {
		return stream.Send(&pb.GetResponse{Found: false})
	}
	defer rc.Close()
	buf := make([]byte, ChunkSize)
	sentFirst := false
	for {
		n, rerr := io.ReadFull(rc, buf)
		if n > 0 || !sentFirst {
			if err := stream.Send(&pb.GetResponse{Found: true, Data: buf[:n]}); err != nil {
				return err
			}
			sentFirst = true
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("read %s: %w", req.Digest, rerr)
		}
	}
}

func (s *repoServer) Has(ctx context.Context, req *pb.HasRequest) (*pb.HasResponse, error) {
	ok, err := s.impl.Has(ctx, req.Digest)
	if err != nil {
		return nil, err
	}
	return &pb.HasResponse{Found: ok}, nil
}
