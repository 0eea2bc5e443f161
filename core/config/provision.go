package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// HostingProviders are the SporeConfig HostingProvider names, each mapped by
// default to the hosting plugin of the same purpose. A provider whose plugin
// is neither bundled nor declared has no backend until the operator maps
// it: its sites fail with "configuration missing".
var HostingProviders = map[string]string{
	"cloudflarePages": "cloudflare-pages",
	"localStatic":     "local-static",
	"s3Static":        "s3-static",
	"criomosHost":     "mesh-app",
}

// ProvisionConfig is the provision block:
//
//	provision {
//	  providers = { localStatic = "my-static-host" }
//	}
type ProvisionConfig struct {
	// Providers holds the block's overrides of HostingProviders; nil
	// without a block. Read it through Plugin.
	Providers map[string]string
}

// Plugin returns the hosting plugin that hosts a provider's sites: the
// override of the provision block, else the default of HostingProviders.
func (p ProvisionConfig) Plugin(provider string) string {
	if name, ok := p.Providers[provider]; ok {
		return name
	}
	return HostingProviders[provider]
}

var provisionSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "providers"}}}

func (d *decoder) provisionBlock(b *hcl.Block, cfg *Config) {
	if b == nil {
		return
	}
	cfg.Provision.Providers = map[string]string{}
	c := d.content(b.Body, provisionSchema)
	if c == nil {
		return
	}
	a, ok := c.Attributes["providers"]
	if !ok {
		return
	}
	v, diags := a.Expr.Value(EvalContext())
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return
	}
	if v.IsNull() || !(v.Type().IsObjectType() || v.Type().IsMapType()) {
		d.errorf(a.Expr.Range(), "Invalid providers", "providers must be a map of hosting provider name to hosting plugin name.")
		return
	}
	for it := v.ElementIterator(); it.Next(); {
		k, pv := it.Element()
		name := k.AsString()
		if _, known := HostingProviders[name]; !known {
			d.errorf(a.Expr.Range(), "Unknown hosting provider",
				"%q is not a HostingProvider; the providers are %s.", name, strings.Join(providerNames(), ", "))
			continue
		}
		if pv.IsNull() || !pv.Type().Equals(cty.String) {
			d.errorf(a.Expr.Range(), "Invalid providers", "The plugin for %s must be a string.", name)
			continue
		}
		plugin := pv.AsString()
		if _, declared := cfg.Plugin(KindHosting, plugin); !declared && !IsBundled(KindHosting, plugin) {
			d.errorf(a.Expr.Range(), "Unknown hosting plugin",
				"No hosting plugin named %q for %s: the bundled ones are %s; declare others with a plugin %q %q { command = ... } block.",
				plugin, name, bundledNames(KindHosting), KindHosting, plugin)
			continue
		}
		cfg.Provision.Providers[name] = plugin
	}
}

func providerNames() []string {
	out := make([]string, 0, len(HostingProviders))
	for k := range HostingProviders {
		out = append(out, fmt.Sprintf("%q", k))
	}
	sort.Strings(out)
	return out
}
