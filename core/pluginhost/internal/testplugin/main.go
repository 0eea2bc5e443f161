// Command testplugin is an external health checker used by the host's
// tests. Its behaviour depends on the name it is started under, so one
// build serves every case:
//
//	*junk*      writes junk to stdout, through os.Stdout and straight to fd 1
//	*required*  declares required attributes "token" (string) and "retries" (number)
//	*novalidate* does not implement sdk.ConfigValidator, like a plugin built
//	            before configurations could be checked without applying them
//	*badschema* declares a duration whose default is not one, so Serve
//	            refuses to start it
//
// Besides greeting it takes a list (codes), a map (headers) and repeated
// nested blocks (match { contains = ... }). Configure and ValidateConfig
// refuse the greeting "reject-me" (naming the attribute), "reject-block"
// (naming none) and a match block containing "reject-me" (naming the
// attribute inside that block).
//
// Check answers healthy with a reason naming the URL and the configured
// token, and logs one line through the sdk logger. A check of the URL
// "hang" never returns, as in a plugin stuck on a lock; a check of "env"
// answers with the plugin's environment, one variable a line.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/mycelium-mesh/mesh/sdk"
)

type checker struct {
	junk      bool
	required  bool
	badSchema bool

	mu  sync.Mutex
	cfg sdk.Config
}

func (c *checker) Info() sdk.Info {
	return sdk.Info{Kind: sdk.KindHealth, Name: "test-health", Version: "0.0.1-test", APIVersions: []uint32{sdk.APIVersion}}
}

func (c *checker) Schema() sdk.Schema {
	s := sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "greeting", Type: sdk.TypeString, Default: "hi"},
		{Name: "codes", Type: sdk.TypeIntList, Min: new(100.0), Max: new(599.0)},
		{Name: "headers", Type: sdk.TypeStringMap},
	}, Blocks: []sdk.Block{{Name: "match", Repeated: true, Schema: sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "contains", Type: sdk.TypeString, Required: true},
	}}}}}
	if c.badSchema {
		s.Attributes = append(s.Attributes, sdk.Attribute{Name: "every", Type: sdk.TypeDuration, Default: "soon"})
	}
	if c.required {
		s.Attributes = append(s.Attributes,
			sdk.Attribute{Name: "token", Type: sdk.TypeString, Required: true},
			sdk.Attribute{Name: "retries", Type: sdk.TypeNumber, Required: true},
		)
	}
	return s
}

func (c *checker) ValidateConfig(_ context.Context, cfg sdk.Config) error {
	switch g := cfg.String("greeting", ""); g {
	case "reject-me":
		return sdk.AttrErrorf("greeting", "%q is refused", g)
	case "reject-block":
		return fmt.Errorf("the whole block is refused")
	}
	for i, m := range cfg.Blocks("match") {
		if v := m.String("contains", ""); v == "reject-me" {
			return sdk.AttrErrorf(fmt.Sprintf("match[%d].contains", i), "%q is refused", v)
		}
	}
	return nil
}

func (c *checker) Configure(ctx context.Context, cfg sdk.Config) error {
	c.scribble("configure")
	if err := c.ValidateConfig(ctx, cfg); err != nil {
		return err
	}
	c.mu.Lock()
	c.cfg = cfg
	c.mu.Unlock()
	return nil
}

func (c *checker) Check(_ context.Context, hc sdk.HealthCheck) (sdk.HealthResult, error) {
	c.scribble("check")
	if hc.URL == "hang" {
		select {}
	}
	if hc.URL == "env" {
		return sdk.HealthResult{Healthy: true, Reason: strings.Join(os.Environ(), "\n")}, nil
	}
	c.mu.Lock()
	cfg := c.cfg
	c.mu.Unlock()
	sdk.Logger().Info("test check served", "url", hc.URL, "bytes", 8900000, "ratio", 0.5)
	return sdk.HealthResult{Healthy: true, Reason: fmt.Sprintf("checked %s greeting=%s token=%s", hc.URL, cfg.String("greeting", ""), cfg.String("token", ""))}, nil
}

func (c *checker) scribble(where string) {
	if !c.junk {
		return
	}
	fmt.Println("junk on stdout from", where, "|||| 1|2|tcp|nonsense|grpc")
	_, _ = syscall.Write(1, []byte("raw junk on fd 1 from "+where+"\n"))
}

// withoutValidator serves a checker without its ValidateConfig method.
type withoutValidator struct{ c *checker }

func (w withoutValidator) Info() sdk.Info     { return w.c.Info() }
func (w withoutValidator) Schema() sdk.Schema { return w.c.Schema() }
func (w withoutValidator) Configure(ctx context.Context, cfg sdk.Config) error {
	return w.c.Configure(ctx, cfg)
}
func (w withoutValidator) Check(ctx context.Context, hc sdk.HealthCheck) (sdk.HealthResult, error) {
	return w.c.Check(ctx, hc)
}

func main() {
	base := filepath.Base(os.Args[0])
	c := &checker{
		junk:      strings.Contains(base, "junk"),
		required:  strings.Contains(base, "required"),
		badSchema: strings.Contains(base, "badschema"),
	}
	if strings.Contains(base, "novalidate") {
		sdk.Serve(withoutValidator{c})
		return
	}
	sdk.Serve(c)
}
