// Package sitefile reads human-written site descriptions (HCL) into
// provision.Config values, so that operators and tests can produce
// SporeConfig streams without a Cap'n Proto toolchain:
//
//	site "blog" {
//	  title = "A blog"
//	  kind  = "blog"
//	  build   { type = "staticPrebuilt"  output_dir = "blog/public" }
//	  domains { primary = "blog.example.test"  aliases = ["www.blog.example.test"] }
//	  hosting { provider = "localStatic" }
//	}
//
// Each site block is one message. Enum values are the schema's names. Every
// value goes through the provisioner's own decoder before it is accepted,
// and a refusal is reported as a diagnostic on the attribute at fault, with
// file and line, like mesh.hcl's.
package sitefile

import (
	"fmt"
	"strings"

	capnp "capnproto.org/go/capnp/v3"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/mycelium-mesh/mesh/core/provision"
)

// Site is one decoded site block and the message that carries it.
type Site struct {
	Config  *provision.Config
	Message *capnp.Message
}

// Parse decodes the site blocks of src (named filename in diagnostics).
func Parse(src []byte, filename string) ([]Site, hcl.Diagnostics) {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	content, d := f.Body.Content(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "site", LabelNames: []string{"id"}}}})
	diags = append(diags, d...)
	var out []Site
	seen := map[string]hcl.Range{}
	for _, b := range content.Blocks {
		id := b.Labels[0]
		if prev, dup := seen[id]; dup {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate site",
				Detail: fmt.Sprintf("site %q is already described at %s", id, prev), Subject: b.LabelRanges[0].Ptr()})
			continue
		}
		seen[id] = b.DefRange
		dec := &decoder{ranges: map[string]hcl.Range{"site": b.DefRange, "site.id": b.LabelRanges[0]}}
		c := dec.site(b)
		diags = append(diags, dec.diags...)
		if dec.diags.HasErrors() {
			continue
		}
		s, err := check(c)
		if err != nil {
			diags = append(diags, dec.refusal(err))
			continue
		}
		out = append(out, s)
	}
	return out, diags
}

// check runs the provisioner's decoder over the encoded message, so a file
// is accepted exactly when its messages would be.
func check(c *provision.Config) (Site, error) {
	msg, err := provision.Encode(c)
	if err != nil {
		return Site{}, err
	}
	dc, err := provision.Decode(msg)
	if err != nil {
		return Site{}, err
	}
	return Site{Config: dc, Message: msg}, nil
}

type decoder struct {
	diags  hcl.Diagnostics
	ranges map[string]hcl.Range // schema field path → where it was written
}

func (d *decoder) errorf(rng hcl.Range, summary, format string, a ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, a...), Subject: rng.Ptr()})
}

// refusal places a provisioner refusal on the attribute it names, or on the
// nearest enclosing block written in the file.
func (d *decoder) refusal(err error) *hcl.Diagnostic {
	field := "site"
	if fe, ok := err.(*provision.FieldError); ok {
		field = fe.Field
	}
	rng := d.ranges["site"]
	for f := field; f != ""; {
		if r, ok := d.ranges[f]; ok {
			rng = r
			break
		}
		if i := strings.LastIndexAny(f, ".["); i >= 0 {
			f = f[:i]
		} else {
			f = ""
		}
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid site", Detail: err.Error(), Subject: rng.Ptr()}
}

func (d *decoder) content(body hcl.Body, attrs []string, blocks ...string) *hcl.BodyContent {
	s := &hcl.BodySchema{}
	for _, a := range attrs {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: a})
	}
	for _, b := range blocks {
		s.Blocks = append(s.Blocks, hcl.BlockHeaderSchema{Type: b})
	}
	c, diags := body.Content(s)
	d.diags = append(d.diags, diags...)
	return c
}

// single returns the only block of a type, or nil; a second one is an error.
func (d *decoder) single(blocks hcl.Blocks, typ, field string) *hcl.Block {
	var found *hcl.Block
	for _, b := range blocks {
		if b.Type != typ {
			continue
		}
		if found != nil {
			d.errorf(b.DefRange, "Duplicate "+typ+" block", "a site has at most one %s block; the first is at %s", typ, found.DefRange)
			continue
		}
		found = b
		d.ranges[field] = b.DefRange
	}
	return found
}

func (d *decoder) str(attrs hcl.Attributes, name, field string, dst *string) {
	a, ok := attrs[name]
	if !ok {
		return
	}
	d.ranges[field] = a.Expr.Range()
	v, diags := a.Expr.Value(nil)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return
	}
	if v.IsNull() || !v.Type().Equals(cty.String) || !v.IsKnown() {
		d.errorf(a.Expr.Range(), "Invalid "+name, "%s must be a string", name)
		return
	}
	*dst = v.AsString()
}

func (d *decoder) strList(attrs hcl.Attributes, name, field string, dst *[]string) {
	a, ok := attrs[name]
	if !ok {
		return
	}
	d.ranges[field] = a.Expr.Range()
	v, diags := a.Expr.Value(nil)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return
	}
	if v.IsNull() || !(v.Type().IsListType() || v.Type().IsTupleType()) {
		d.errorf(a.Expr.Range(), "Invalid "+name, "%s must be a list of strings", name)
		return
	}
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() || !e.Type().Equals(cty.String) {
			d.errorf(a.Expr.Range(), "Invalid "+name, "%s must be a list of strings", name)
			return
		}
		*dst = append(*dst, e.AsString())
	}
}

func (d *decoder) uint32(attrs hcl.Attributes, name, field string, dst *uint32) {
	a, ok := attrs[name]
	if !ok {
		return
	}
	d.ranges[field] = a.Expr.Range()
	v, diags := a.Expr.Value(nil)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return
	}
	if v.IsNull() || !v.Type().Equals(cty.Number) {
		d.errorf(a.Expr.Range(), "Invalid "+name, "%s must be a number", name)
		return
	}
	bf := v.AsBigFloat()
	n, acc := bf.Uint64()
	if !bf.IsInt() || acc != 0 || n > 1<<32-1 {
		d.errorf(a.Expr.Range(), "Invalid "+name, "%s must be a whole number from 0 to 4294967295", name)
		return
	}
	*dst = uint32(n)
}

// enum reads a schema enum by name through parse (the model's own parser).
func (d *decoder) enum(attrs hcl.Attributes, name, field string, parse func(string) error) {
	var s string
	d.str(attrs, name, field, &s)
	if _, ok := attrs[name]; !ok || s == "" {
		return
	}
	if err := parse(s); err != nil {
		d.errorf(attrs[name].Expr.Range(), "Invalid "+name, "%v", err)
	}
}

func (d *decoder) site(b *hcl.Block) *provision.Config {
	c := &provision.Config{Site: provision.Site{ID: b.Labels[0]}}
	body := d.content(b.Body, []string{"title", "kind"}, "repo", "build", "domains", "hosting", "dns", "purchase")
	if body == nil {
		return c
	}
	d.str(body.Attributes, "title", "site.title", &c.Site.Title)
	d.enum(body.Attributes, "kind", "site.kind", func(s string) error { return c.Site.Kind.UnmarshalText([]byte(s)) })

	if rb := d.single(body.Blocks, "repo", "repo"); rb != nil {
		c.Repo = &provision.Repo{Provider: provision.RepoNone}
		a := d.content(rb.Body, []string{"provider", "slug", "default_branch"})
		if a != nil {
			d.enum(a.Attributes, "provider", "repo.provider", func(s string) error { return c.Repo.Provider.UnmarshalText([]byte(s)) })
			d.str(a.Attributes, "slug", "repo.slug", &c.Repo.Slug)
			d.str(a.Attributes, "default_branch", "repo.defaultBranch", &c.Repo.DefaultBranch)
		}
	}
	if bb := d.single(body.Blocks, "build", "build"); bb != nil {
		c.Build = &provision.Build{}
		a := d.content(bb.Body, []string{"type", "output_dir", "framework"})
		if a != nil {
			d.enum(a.Attributes, "type", "build.type", func(s string) error { return c.Build.Type.UnmarshalText([]byte(s)) })
			d.str(a.Attributes, "output_dir", "build.outputDir", &c.Build.OutputDir)
			d.enum(a.Attributes, "framework", "build.framework", func(s string) error { return c.Build.Framework.UnmarshalText([]byte(s)) })
		}
	}
	if db := d.single(body.Blocks, "domains", "domains"); db != nil {
		c.Domains = &provision.Domains{}
		a := d.content(db.Body, []string{"primary", "aliases"})
		if a != nil {
			d.str(a.Attributes, "primary", "domains.primary", &c.Domains.Primary)
			d.strList(a.Attributes, "aliases", "domains.aliases", &c.Domains.Aliases)
		}
	}
	hb := d.single(body.Blocks, "hosting", "hosting")
	if hb == nil {
		d.errorf(b.DefRange, "Missing hosting block", "site %q needs a hosting block naming its provider (an absent one is never taken to mean cloudflarePages)", c.Site.ID)
	} else {
		a := d.content(hb.Body, []string{"provider", "project_name", "production_branch"})
		if a != nil {
			if _, ok := a.Attributes["provider"]; !ok {
				d.errorf(hb.DefRange, "Missing provider", "the hosting block needs provider = one of %s", providerNames())
			}
			d.enum(a.Attributes, "provider", "hosting.provider", func(s string) error { return c.Hosting.Provider.UnmarshalText([]byte(s)) })
			d.str(a.Attributes, "project_name", "hosting.projectName", &c.Hosting.ProjectName)
			d.str(a.Attributes, "production_branch", "hosting.productionBranch", &c.Hosting.ProductionBranch)
		}
	}
	if nb := d.single(body.Blocks, "dns", "dns"); nb != nil {
		c.DNS = &provision.DNS{}
		a := d.content(nb.Body, []string{"provider", "zone_id"}, "record")
		if a != nil {
			d.enum(a.Attributes, "provider", "dns.provider", func(s string) error { return c.DNS.Provider.UnmarshalText([]byte(s)) })
			d.str(a.Attributes, "zone_id", "dns.zoneId", &c.DNS.ZoneID)
			for i, rb := range a.Blocks {
				f := fmt.Sprintf("dns.records[%d]", i)
				d.ranges[f] = rb.DefRange
				var r provision.DNSRecord
				ra := d.content(rb.Body, []string{"name", "type", "value", "ttl"})
				if ra != nil {
					d.str(ra.Attributes, "name", f+".name", &r.Name)
					d.str(ra.Attributes, "type", f+".type", &r.Type)
					d.str(ra.Attributes, "value", f+".value", &r.Value)
					d.uint32(ra.Attributes, "ttl", f+".ttl", &r.TTL)
				}
				c.DNS.Records = append(c.DNS.Records, r)
			}
		}
	}
	if pb := d.single(body.Blocks, "purchase", "purchase"); pb != nil {
		c.Purchase = &provision.Purchase{}
		a := d.content(pb.Body, []string{"provider", "domain"})
		if a != nil {
			d.enum(a.Attributes, "provider", "purchase.provider", func(s string) error { return c.Purchase.Provider.UnmarshalText([]byte(s)) })
			d.str(a.Attributes, "domain", "purchase.domain", &c.Purchase.Domain)
		}
	}
	return c
}

func providerNames() string {
	var names []string
	for _, p := range provision.HostingProviders() {
		names = append(names, fmt.Sprintf("%q", p.String()))
	}
	return strings.Join(names, ", ")
}
