// Command testplugin is an external health checker used by the host's
// tests. Its behaviour depends on the name it is started under, so one
// build serves every case:
//
//	*junk*      writes junk to stdout, through os.Stdout and straight to fd 1
//	*required*  declares required attributes "token" (string) and "retries" (number)
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
	junk     bool
	required bool

	mu  sync.Mutex
	cfg sdk.Config
}

func (c *checker) Info() sdk.Info {
	return sdk.Info{Kind: sdk.KindHealth, Name: "test-health", Version: "0.0.1-test", APIVersions: []uint32{sdk.APIVersion}}
}

func (c *checker) Schema() sdk.Schema {
	s := sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "greeting", Type: sdk.TypeString, Default: "hi"},
	}}
	if c.required {
		s.Attributes = append(s.Attributes,
			sdk.Attribute{Name: "token", Type: sdk.TypeString, Required: true},
			sdk.Attribute{Name: "retries", Type: sdk.TypeNumber, Required: true},
		)
	}
	return s
}

func (c *checker) Configure(_ context.Context, cfg sdk.Config) error {
	c.scribble("configure")
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
	sdk.Logger().Info("test check served", "url", hc.URL)
	return sdk.HealthResult{Healthy: true, Reason: fmt.Sprintf("checked %s greeting=%s token=%s", hc.URL, cfg.String("greeting", ""), cfg.String("token", ""))}, nil
}

func (c *checker) scribble(where string) {
	if !c.junk {
		return
	}
	fmt.Println("junk on stdout from", where, "|||| 1|2|tcp|nonsense|grpc")
	_, _ = syscall.Write(1, []byte("raw junk on fd 1 from "+where+"\n"))
}

func main() {
	base := filepath.Base(os.Args[0])
	sdk.Serve(&checker{
		junk:     strings.Contains(base, "junk"),
		required: strings.Contains(base, "required"),
	})
}
