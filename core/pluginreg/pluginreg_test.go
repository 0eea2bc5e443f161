package pluginreg_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/mycelium-mesh/mesh/core/pluginreg"
	"github.com/mycelium-mesh/mesh/sdk"
)

type fake struct{ kind, name string }

func (f fake) Info() sdk.Info                            { return sdk.Info{Kind: f.kind, Name: f.name} }
func (fake) Schema() sdk.Schema                          { return sdk.Schema{} }
func (fake) Configure(context.Context, sdk.Config) error { return nil }

func TestRegistry(t *testing.T) {
	pluginreg.Register(
		func() sdk.Plugin { return fake{"test-kind", "b"} },
		func() sdk.Plugin { return fake{"test-kind", "a"} },
	)
	if got := pluginreg.Names("test-kind"); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("names %v", got)
	}
	if mk, ok := pluginreg.Lookup("test-kind", "a"); !ok || mk().Info().Name != "a" {
		t.Fatal("lookup a")
	}
	if _, ok := pluginreg.Lookup("test-kind", "c"); ok {
		t.Fatal("lookup of an unregistered name succeeded")
	}
	if infos := pluginreg.Infos(); len(infos) != 2 || infos[0].Name != "a" {
		t.Fatalf("infos %v", infos)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a name registered twice did not panic")
		}
	}()
	pluginreg.Register(func() sdk.Plugin { return fake{"test-kind", "a"} })
}
