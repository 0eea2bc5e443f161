package plugintest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/internal/hostapi"
	"github.com/mycelium-mesh/mesh/sdk/pluginclient"
	"github.com/mycelium-mesh/mesh/sdk/plugintest"
)

// base is the shared part of the small plugins below.
type base struct {
	kind string
	mu   sync.Mutex
	cfg  sdk.Config
}

func (b *base) Info() sdk.Info {
	return sdk.Info{Kind: b.kind, Name: "t-" + b.kind, Version: "9.9", APIVersions: []uint32{sdk.APIVersion}}
}

func (b *base) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "names", Type: sdk.TypeStringList, Default: []string{"x"}, Description: "d"},
		{Name: "limit", Type: sdk.TypeNumber, Required: true},
		{Name: "wait", Type: sdk.TypeDuration, Default: "1s"},
		{Name: "count", Type: sdk.TypeInt, Default: int64(5), Min: new(1.0), Max: new(10.0)},
		{Name: "mode", Type: sdk.TypeString, OneOf: []string{"fast", "fair"}},
		{Name: "weights", Type: sdk.TypeIntMap, Default: map[string]int64{"a": 1 << 60}, Min: new(0.0)},
		{Name: "ports", Type: sdk.TypeIntList},
	}, Blocks: []sdk.Block{
		{Name: "backend", Repeated: true, Description: "one upstream", Schema: sdk.Schema{
			Attributes: []sdk.Attribute{{Name: "url", Type: sdk.TypeString, Required: true}},
			Blocks:     []sdk.Block{{Name: "tls", Required: true}},
		}},
	}}
}

func (b *base) Configure(_ context.Context, cfg sdk.Config) error {
	if cfg.Number("limit", 0) < 0 {
		return errors.New("limit must not be negative")
	}
	b.mu.Lock()
	b.cfg = cfg
	b.mu.Unlock()
	return nil
}

type echoBalancer struct{ base }

func (e *echoBalancer) Balance(ctx context.Context, s sdk.AppState) (sdk.Policy, error) {
	switch s.App {
	case "fail":
		return sdk.Policy{}, errors.New("cannot balance fail")
	case "slow":
		time.Sleep(300 * time.Millisecond)
	}
	w := map[string]uint32{}
	for _, l := range s.Loads {
		w[l.ID] = l.InFlight + uint32(l.Requests) + uint32(l.Failures) + uint32(l.LatencyEWMA)
	}
	return sdk.Policy{Mode: sdk.ModeP2C, Weights: w}, nil
}

type memRepo struct {
	base
	blobs map[string][]byte
}

func (m *memRepo) Put(_ context.Context, d string, r io.Reader) error {
	if d == "sha256:refuse" {
		return errors.New("refused by backend")
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.blobs[d] = b
	m.mu.Unlock()
	return nil
}

func (m *memRepo) Get(_ context.Context, d string) (io.ReadCloser, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[d]
	if !ok {
		return nil, false, nil
	}
	return io.NopCloser(bytes.NewReader(b)), true, nil
}

func (m *memRepo) Has(_ context.Context, d string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.blobs[d]
	return ok, nil
}

type health struct{ base }

func (h *health) Check(ctx context.Context, c sdk.HealthCheck) (sdk.HealthResult, error) {
	if c.URL == "err" {
		return sdk.HealthResult{}, errors.New("checker broke")
	}
	dl, ok := ctx.Deadline()
	return sdk.HealthResult{Healthy: true, Reason: fmt.Sprintf("%s%s deadline=%v in=%v", c.URL, c.Path, ok, time.Until(dl) <= c.Timeout)}, nil
}

func TestBaseCalls(t *testing.T) {
	c := plugintest.Health(t, &health{base: base{kind: sdk.KindHealth}})
	ctx := context.Background()
	info, err := c.GetInfo(ctx)
	if err != nil || info.Name != "t-health" || info.Version != "9.9" || !reflect.DeepEqual(info.APIVersions, []uint32{1}) {
		t.Fatalf("info %+v %v", info, err)
	}
	s, err := c.GetSchema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := (&base{}).Schema()
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("schema over the wire\n got %#v\nwant %#v", s, want)
	}
	if err := c.Configure(ctx, sdk.Config{"limit": -1.0}); err == nil || !strings.Contains(err.Error(), "limit must not be negative") {
		t.Fatalf("Configure error not carried: %v", err)
	}
}

func TestConfigureTypes(t *testing.T) {
	impl := &health{base: base{kind: sdk.KindHealth}}
	c := plugintest.Health(t, impl)
	in := sdk.Config{"names": []string{"a", "b"}, "limit": 3.0, "wait": "2s", "count": int64(4),
		"weights": map[string]int64{"big": 1<<62 + 1}, "ports": []int64{80, 443},
		"backend": []sdk.Config{{"url": "http://a", "tls": sdk.Config{}}, {"url": "http://b"}}}
	if err := c.Configure(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	impl.mu.Lock()
	got := impl.cfg
	impl.mu.Unlock()
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("plugin saw %#v, want %#v", got, in)
	}
}

func TestHealth(t *testing.T) {
	c := plugintest.Health(t, &health{base: base{kind: sdk.KindHealth}})
	res, err := c.Check(context.Background(), sdk.HealthCheck{URL: "http://x", Path: "/h", Timeout: time.Second})
	if err != nil || !res.Healthy || res.Reason != "http://x/h deadline=true in=true" {
		t.Fatalf("%+v %v", res, err)
	}
	if _, err := c.Check(context.Background(), sdk.HealthCheck{URL: "err"}); err == nil || !strings.Contains(err.Error(), "checker broke") {
		t.Fatalf("error not carried: %v", err)
	}
}

func TestBalancer(t *testing.T) {
	c := plugintest.Balancer(t, &echoBalancer{base{kind: sdk.KindBalancer}})
	ctx := context.Background()
	st := sdk.AppState{App: "web", Endpoints: []sdk.Endpoint{{ID: "a", URL: "u", NodeID: "n"}},
		Loads: []sdk.EndpointLoad{{ID: "a", InFlight: 1, Requests: 10, Failures: 100, LatencyEWMA: 1000}}}
	p, err := c.Balance(ctx, st)
	if err != nil || p.App != "web" || p.Mode != sdk.ModeP2C || p.Weights["a"] != 1111 {
		t.Fatalf("policy %+v %v", p, err)
	}
	if _, err := c.Balance(ctx, sdk.AppState{App: "fail"}); err == nil || !strings.Contains(err.Error(), "cannot balance fail") {
		t.Fatalf("plugin error not carried: %v", err)
	}
	// A caller that gives up does not break the stream for the next one.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.Balance(short, sdk.AppState{App: "slow"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow call: %v, want deadline exceeded", err)
	}
	if p, err := c.Balance(ctx, st); err != nil || p.Weights["a"] != 1111 {
		t.Fatalf("after an abandoned call: %+v %v", p, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Balance(ctx, st); !errors.Is(err, pluginclient.ErrStreamClosed) {
		t.Fatalf("after Close: %v, want ErrStreamClosed", err)
	}
}

func TestRepo(t *testing.T) {
	c := plugintest.Repo(t, &memRepo{base: base{kind: sdk.KindRepo}, blobs: map[string][]byte{}})
	ctx := context.Background()
	for _, n := range []int{0, 1, sdk.ChunkSize - 1, sdk.ChunkSize, 5*sdk.ChunkSize + 3} {
		blob := bytes.Repeat([]byte{byte(n)}, n)
		d := fmt.Sprintf("sha256:%d", n)
		if err := c.Put(ctx, d, bytes.NewReader(blob)); err != nil {
			t.Fatalf("put %d: %v", n, err)
		}
		rc, found, err := c.Get(ctx, d)
		if err != nil || !found {
			t.Fatalf("get %d: %v %v", n, found, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, blob) {
			t.Fatalf("get %d: %d bytes, %v", n, len(got), err)
		}
	}
	if _, found, err := c.Get(ctx, "sha256:absent"); found || err != nil {
		t.Fatalf("absent: %v %v", found, err)
	}
	if ok, err := c.Has(ctx, "sha256:1"); !ok || err != nil {
		t.Fatalf("has: %v %v", ok, err)
	}
	if err := c.Put(ctx, "sha256:refuse", strings.NewReader("x")); err == nil || !strings.Contains(err.Error(), "refused by backend") {
		t.Fatalf("backend error not carried: %v", err)
	}
	// A reader that fails mid-way aborts the upload.
	if err := c.Put(ctx, "sha256:broken", io.MultiReader(strings.NewReader("abc"), errReader{})); err == nil {
		t.Fatal("Put with a failing reader succeeded")
	}
	if ok, _ := c.Has(ctx, "sha256:broken"); ok {
		t.Fatal("a failed upload was stored")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestStartRefusesMismatch(t *testing.T) {
	// Declares balancer, implements only health.
	type liar struct{ health }
	l := &liar{health{base{kind: sdk.KindBalancer}}}
	if _, err := hostapi.ServerPluginSet(l); err == nil || !strings.Contains(err.Error(), "does not implement sdk.Balancer") {
		t.Fatalf("err %v", err)
	}
	unknown := &health{base{kind: "cache"}}
	if _, err := hostapi.ServerPluginSet(unknown); err == nil || !strings.Contains(err.Error(), "unknown kind") {
		t.Fatalf("err %v", err)
	}
}
