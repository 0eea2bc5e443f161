package provision

import (
	"fmt"

	capnp "capnproto.org/go/capnp/v3"

	"github.com/mycelium-mesh/mesh/proto/sporev1"
)

// Decode turns one SporeConfig message into a Config, or refuses it with a
// *FieldError. It is the only place that reads Cap'n Proto: every check the
// rest of the system relies on is made here.
//
// The message's traversal limit (set by the caller, see Reader) bounds how
// much a hostile message can make Decode read; exceeding it is a refusal
// like any other.
func Decode(msg *capnp.Message) (*Config, error) {
	root, err := sporev1.ReadRootSporeConfig(msg)
	if err != nil {
		return nil, fieldErr("(root)", ErrMalformed, "%v", err)
	}
	var c Config
	if !root.HasSite() {
		return nil, fieldErr("site", ErrRequired, "")
	}
	s, err := root.Site()
	if err != nil {
		return nil, fieldErr("site", ErrMalformed, "%v", err)
	}
	if c.Site, err = decodeSite(s); err != nil {
		return nil, err
	}
	if !root.HasHosting() {
		return nil, fieldErr("hosting", ErrRequired, "an absent hosting block must not mean cloudflarePages")
	}
	h, err := root.Hosting()
	if err != nil {
		return nil, fieldErr("hosting", ErrMalformed, "%v", err)
	}
	if c.Hosting, err = decodeHosting(h); err != nil {
		return nil, err
	}
	if root.HasRepo() {
		r, err := root.Repo()
		if err != nil {
			return nil, fieldErr("repo", ErrMalformed, "%v", err)
		}
		if c.Repo, err = decodeRepo(r); err != nil {
			return nil, err
		}
	}
	if root.HasBuild() {
		b, err := root.Build()
		if err != nil {
			return nil, fieldErr("build", ErrMalformed, "%v", err)
		}
		if c.Build, err = decodeBuild(b); err != nil {
			return nil, err
		}
	}
	if root.HasDomains() {
		d, err := root.Domains()
		if err != nil {
			return nil, fieldErr("domains", ErrMalformed, "%v", err)
		}
		if c.Domains, err = decodeDomains(d); err != nil {
			return nil, err
		}
	}
	if root.HasDns() {
		d, err := root.Dns()
		if err != nil {
			return nil, fieldErr("dns", ErrMalformed, "%v", err)
		}
		if c.DNS, err = decodeDNS(d); err != nil {
			return nil, err
		}
	}
	if root.HasPurchase() {
		p, err := root.Purchase()
		if err != nil {
			return nil, fieldErr("purchase", ErrMalformed, "%v", err)
		}
		if c.Purchase, err = decodePurchase(p); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// text reads one Text field, refusing a broken pointer and bounding it.
func text(field string, get func() (string, error), max int) (string, error) {
	s, err := get()
	if err != nil {
		return "", fieldErr(field, ErrMalformed, "%v", err)
	}
	if err := checkText(field, s, max); err != nil {
		return "", err
	}
	return s, nil
}

// enum range-checks an ordinal: one from a newer schema is refused by type,
// number and the names this build knows, never passed on.
func enum(field string, e enumNames, v uint16) error {
	if e.valid(v) {
		return nil
	}
	return fieldErr(field, ErrUnknownEnum, "%s ordinal %d is not known to this mesh (known: 0..%d = %v); upgrade mesh to accept it",
		e.typ, v, len(e.names)-1, e.names)
}

func decodeSite(s sporev1.Site) (Site, error) {
	var out Site
	id, err := text("site.id", s.Id, MaxTextLen)
	if err != nil {
		return out, err
	}
	if err := checkLabel("site.id", id); err != nil {
		return out, err
	}
	out.ID = id
	if out.Title, err = text("site.title", s.Title, MaxTextLen); err != nil {
		return out, err
	}
	if err := enum("site.kind", siteKinds, uint16(s.Kind())); err != nil {
		return out, err
	}
	out.Kind = SiteKind(s.Kind())
	return out, nil
}

func decodeHosting(h sporev1.Hosting) (Hosting, error) {
	var out Hosting
	if err := enum("hosting.provider", hostingProviders, uint16(h.Provider())); err != nil {
		return out, err
	}
	out.Provider = HostingProvider(h.Provider())
	var err error
	if out.ProjectName, err = text("hosting.projectName", h.ProjectName, MaxTextLen); err != nil {
		return out, err
	}
	if out.ProjectName != "" {
		if err := checkLabel("hosting.projectName", out.ProjectName); err != nil {
			return out, err
		}
	}
	if out.ProductionBranch, err = text("hosting.productionBranch", h.ProductionBranch, MaxTextLen); err != nil {
		return out, err
	}
	return out, nil
}

func decodeRepo(r sporev1.Repo) (*Repo, error) {
	out := &Repo{}
	if err := enum("repo.provider", repoProviders, uint16(r.Provider())); err != nil {
		return nil, err
	}
	out.Provider = RepoProvider(r.Provider())
	var err error
	if out.Slug, err = text("repo.slug", r.Slug, MaxTextLen); err != nil {
		return nil, err
	}
	if out.DefaultBranch, err = text("repo.defaultBranch", r.DefaultBranch, MaxTextLen); err != nil {
		return nil, err
	}
	if out.Provider != RepoNone && out.Slug == "" {
		return nil, fieldErr("repo.slug", ErrRequired, "repo.provider %s needs an owner/name slug", out.Provider)
	}
	return out, nil
}

func decodeBuild(b sporev1.Build) (*Build, error) {
	out := &Build{}
	if err := enum("build.type", buildTypes, uint16(b.Type())); err != nil {
		return nil, err
	}
	out.Type = BuildType(b.Type())
	dir, err := text("build.outputDir", b.OutputDir, MaxTextLen)
	if err != nil {
		return nil, err
	}
	if out.OutputDir, err = checkRelPath("build.outputDir", dir); err != nil {
		return nil, err
	}
	if err := enum("build.framework", cfFrameworks, uint16(b.Framework())); err != nil {
		return nil, err
	}
	out.Framework = CfFramework(b.Framework())
	return out, nil
}

func decodeDomains(d sporev1.Domains) (*Domains, error) {
	out := &Domains{}
	p, err := text("domains.primary", d.Primary, MaxTextLen)
	if err != nil {
		return nil, err
	}
	if out.Primary, err = normHost("domains.primary", p); err != nil {
		return nil, err
	}
	seen := map[string]string{out.Primary: "domains.primary"}
	if !d.HasAliases() {
		return out, nil
	}
	list, err := d.Aliases()
	if err != nil {
		return nil, fieldErr("domains.aliases", ErrMalformed, "%v", err)
	}
	if list.Len() > MaxAliases {
		return nil, fieldErr("domains.aliases", ErrTooMany, "%d, at most %d", list.Len(), MaxAliases)
	}
	for i := 0; i < list.Len(); i++ {
		field := fmt.Sprintf("domains.aliases[%d]", i)
		a, err := text(field, func() (string, error) { return list.At(i) }, MaxTextLen)
		if err != nil {
			return nil, err
		}
		h, err := normHost(field, a)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[h]; dup {
			return nil, fieldErr(field, ErrDuplicate, "%s is already %s", h, prev)
		}
		seen[h] = field
		out.Aliases = append(out.Aliases, h)
	}
	return out, nil
}

// dnsTypes are the record types a DNS backend is asked to keep.
var dnsTypes = map[string]bool{"A": true, "AAAA": true, "CNAME": true, "TXT": true, "MX": true, "NS": true, "CAA": true, "SRV": true}

func decodeDNS(d sporev1.DnsConfig) (*DNS, error) {
	out := &DNS{}
	if err := enum("dns.provider", hostingProviders, uint16(d.Provider())); err != nil {
		return nil, err
	}
	out.Provider = HostingProvider(d.Provider())
	var err error
	if out.ZoneID, err = text("dns.zoneId", d.ZoneId, MaxTextLen); err != nil {
		return nil, err
	}
	if !d.HasRecords() {
		return out, nil
	}
	list, err := d.Records()
	if err != nil {
		return nil, fieldErr("dns.records", ErrMalformed, "%v", err)
	}
	if list.Len() > MaxDNSRecords {
		return nil, fieldErr("dns.records", ErrTooMany, "%d, at most %d", list.Len(), MaxDNSRecords)
	}
	for i := 0; i < list.Len(); i++ {
		r := list.At(i)
		f := fmt.Sprintf("dns.records[%d]", i)
		var rec DNSRecord
		if rec.Name, err = text(f+".name", r.Name, MaxTextLen); err != nil {
			return nil, err
		}
		if rec.Name == "" {
			return nil, fieldErr(f+".name", ErrRequired, "use \"@\" for the zone apex")
		}
		if rec.Type, err = text(f+".type", r.Type, MaxTextLen); err != nil {
			return nil, err
		}
		if !dnsTypes[rec.Type] {
			return nil, fieldErr(f+".type", ErrUnknownEnum, "record type %q (one of A, AAAA, CNAME, TXT, MX, NS, CAA, SRV)", clip(rec.Type))
		}
		if rec.Value, err = text(f+".value", r.Value, MaxTextLen); err != nil {
			return nil, err
		}
		if rec.Value == "" {
			return nil, fieldErr(f+".value", ErrRequired, "")
		}
		rec.TTL = r.Ttl()
		out.Records = append(out.Records, rec)
	}
	return out, nil
}

func decodePurchase(p sporev1.PurchaseConfig) (*Purchase, error) {
	out := &Purchase{}
	if err := enum("purchase.provider", registrars, uint16(p.Provider())); err != nil {
		return nil, err
	}
	out.Provider = Registrar(p.Provider())
	d, err := text("purchase.domain", p.Domain, MaxTextLen)
	if err != nil {
		return nil, err
	}
	if out.Domain, err = normHost("purchase.domain", d); err != nil {
		return nil, err
	}
	return out, nil
}
