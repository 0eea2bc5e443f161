package plugintest

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mesh/sdk"
)

// fatalTB records the first Fatal of the code under test and ends its
// goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// badSchema declares a default its own type refuses.
type badSchema struct{}

func (badSchema) Info() sdk.Info { return sdk.Info{Kind: sdk.KindHealth, Name: "bad-schema"} }
func (badSchema) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{{Name: "every", Type: sdk.TypeDuration, Default: "soon"}}}
}
func (badSchema) Configure(context.Context, sdk.Config) error { return nil }
func (badSchema) Check(context.Context, sdk.HealthCheck) (sdk.HealthResult, error) {
	return sdk.HealthResult{}, nil
}

// wrongKind declares a kind whose interface it does not implement.
type wrongKind struct{ badSchema }

func (wrongKind) Info() sdk.Info     { return sdk.Info{Kind: sdk.KindBalancer, Name: "wrong-kind"} }
func (wrongKind) Schema() sdk.Schema { return sdk.Schema{} }

// A plugin that its own Serve would refuse to start fails Run with the
// reason, not with go-plugin's note about a missing handshake line.
func TestRunRefusesWhatServeWould(t *testing.T) {
	for _, tc := range []struct {
		name string
		impl sdk.Plugin
		want string
	}{
		{"default of the wrong type", badSchema{}, `plugin "bad-schema": schema: attribute "every": default soon is not a duration`},
		{"kind not implemented", wrongKind{}, `plugin "wrong-kind" declares kind "balancer" but does not implement sdk.Balancer`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			implMu.Lock()
			saved := newImpl
			newImpl = func() sdk.Plugin { return tc.impl }
			implMu.Unlock()
			defer func() {
				implMu.Lock()
				newImpl = saved
				implMu.Unlock()
			}()
			tb := &fatalTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				Run(tb)
			}()
			<-done
			if !strings.Contains(tb.msg, tc.want) || strings.Contains(tb.msg, "handshake") {
				t.Fatalf("Run failed with %q, want it to say %q", tb.msg, tc.want)
			}
		})
	}
}
