package config

import (
	"github.com/hashicorp/hcl/v2"
)

// repoBackendInline takes the attributes of the repo block other than dir
// and backend as the config of a bundled backend plugin, so that
//
//	repo {
//	  backend    = "http"
//	  url        = "http://10.0.0.1:7070"
//	  token_file = "control.token"
//	}
//
// means the same as a plugin "repo" "http" { config { ... } } block. They
// are decoded against the plugin's schema like any plugin config, with
// their file and line. A backend configured both ways, attributes without
// a backend, or attributes for an external plugin are reported.
func (d *decoder) repoBackendInline(cfg *Config, rest hcl.Body, rng hcl.Range) {
	attrs, diags := rest.JustAttributes()
	if diags.HasErrors() {
		d.diags = append(d.diags, diags...) // a block where only dir, backend and backend attributes may be
		return
	}
	if len(attrs) == 0 {
		return
	}
	var first *hcl.Attribute
	for _, a := range attrs {
		if first == nil || a.Range.Start.Line < first.Range.Start.Line {
			first = a
		}
	}
	name := cfg.Repo.Backend
	switch {
	case name == "":
		d.errorf(first.Range, "Unsupported argument", "%s configures a repo backend, but the repo block names no backend.", first.Name)
		return
	case !IsBundled(KindRepo, name):
		d.errorf(first.Range, "Unsupported argument", "Only a bundled repo backend is configured inside the repo block; configure %q in its plugin \"repo\" %q { config { ... } } block.", name, name)
		return
	}
	for k, p := range cfg.Plugins {
		if p.Kind != KindRepo || p.Name != name {
			continue
		}
		if p.Config != nil {
			d.errorf(first.Range, "Repo backend configured twice", "The repo block configures %q, and so does its plugin \"repo\" %q block on line %d; keep one.", name, name, p.DeclRange.Start.Line)
			return
		}
		cfg.Plugins[k].Config = rest
		return
	}
	cfg.Plugins = append(cfg.Plugins, PluginBlock{Kind: KindRepo, Name: name, Config: rest, DeclRange: rng})
}
