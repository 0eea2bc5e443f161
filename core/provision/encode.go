package provision

import (
	"fmt"

	capnp "capnproto.org/go/capnp/v3"

	"github.com/mycelium-mesh/mesh/proto/sporev1"
)

// Encode builds the SporeConfig message for c. Optional parts that are nil
// are left absent on the wire, so Decode(Encode(c)) gives c back. Encode
// does not validate: producers that want the provisioner's checks decode
// what they wrote, as `mesh provision encode` does.
func Encode(c *Config) (*capnp.Message, error) {
	msg, seg, err := capnp.NewMessage(capnp.SingleSegment(nil))
	if err != nil {
		return nil, fmt.Errorf("new message: %w", err)
	}
	root, err := sporev1.NewRootSporeConfig(seg)
	if err != nil {
		return nil, fmt.Errorf("new root: %w", err)
	}
	e := encoder{}
	s := e.site(root.NewSite)
	if e.err != nil {
		return nil, fmt.Errorf("encode site %q: %w", c.Site.ID, e.err)
	}
	e.set(s.SetId, c.Site.ID)
	e.set(s.SetTitle, c.Site.Title)
	s.SetKind(sporev1.SiteKind(c.Site.Kind))

	h := e.hosting(root.NewHosting)
	if e.err != nil {
		return nil, fmt.Errorf("encode site %q: %w", c.Site.ID, e.err)
	}
	h.SetProvider(sporev1.HostingProvider(c.Hosting.Provider))
	e.set(h.SetProjectName, c.Hosting.ProjectName)
	e.set(h.SetProductionBranch, c.Hosting.ProductionBranch)

	if r := c.Repo; r != nil && e.err == nil {
		w, err := root.NewRepo()
		if err != nil {
			return nil, fmt.Errorf("encode site %q: %w", c.Site.ID, err)
		}
		w.SetProvider(sporev1.RepoProvider(r.Provider))
		e.set(w.SetSlug, r.Slug)
		e.set(w.SetDefaultBranch, r.DefaultBranch)
	}
	if b := c.Build; b != nil && e.err == nil {
		w, err := root.NewBuild()
		if err != nil {
			return nil, fmt.Errorf("encode site %q: %w", c.Site.ID, err)
		}
		w.SetType(sporev1.BuildType(b.Type))
		e.set(w.SetOutputDir, b.OutputDir)
		w.SetFramework(sporev1.CfFramework(b.Framework))
	}
	if d := c.Domains; d != nil && e.err == nil {
		w, err := root.NewDomains()
		if err != nil {
			return nil, fmt.Errorf("encode site %q: %w", c.Site.ID, err)
		}
		e.set(w.SetPrimary, d.Primary)
		if len(d.Aliases) > 0 && e.err == nil {
			l, err := w.NewAliases(int32(len(d.Aliases)))
			if err != nil {
				return nil, fmt.Errorf("encode site %q: %w", c.Site.ID, err)
			}
			for i, a := range d.Aliases {
				if e.err == nil {
					e.keep(l.Set(i, a))
				}
			}
		}
	}
	if d := c.DNS; d != nil && e.err == nil {
		w, err := root.NewDns()
		if err != nil {
			return nil, fmt.Errorf("encode site %q: %w", c.Site.ID, err)
		}
		w.SetProvider(sporev1.HostingProvider(d.Provider))
		e.set(w.SetZoneId, d.ZoneID)
		if len(d.Records) > 0 && e.err == nil {
			l, err := w.NewRecords(int32(len(d.Records)))
			if err != nil {
				return nil, fmt.Errorf("encode site %q: %w", c.Site.ID, err)
			}
			for i, r := range d.Records {
				if e.err != nil {
					break
				}
				rw := l.At(i)
				e.set(rw.SetName, r.Name)
				e.set(rw.SetType, r.Type)
				e.set(rw.SetValue, r.Value)
				rw.SetTtl(r.TTL)
			}
		}
	}
	if p := c.Purchase; p != nil && e.err == nil {
		w, err := root.NewPurchase()
		if err != nil {
			return nil, fmt.Errorf("encode site %q: %w", c.Site.ID, err)
		}
		w.SetProvider(sporev1.PurchaseConfig_Registrar(p.Provider))
		e.set(w.SetDomain, p.Domain)
	}
	if e.err != nil {
		return nil, fmt.Errorf("encode site %q: %w", c.Site.ID, e.err)
	}
	return msg, nil
}

// encoder keeps the first error of a run of setters, so Encode reads as the
// list of fields it writes.
type encoder struct{ err error }

func (e *encoder) keep(err error) {
	if e.err == nil {
		e.err = err
	}
}

// set writes a text field; empty text is left absent, as the C++ tool does.
func (e *encoder) set(f func(string) error, v string) {
	if e.err == nil && v != "" {
		e.keep(f(v))
	}
}

func (e *encoder) site(f func() (sporev1.Site, error)) sporev1.Site {
	s, err := f()
	e.keep(err)
	return s
}

func (e *encoder) hosting(f func() (sporev1.Hosting, error)) sporev1.Hosting {
	s, err := f()
	e.keep(err)
	return s
}
