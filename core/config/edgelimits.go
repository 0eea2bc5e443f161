package config

import (
	"net/netip"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// edgeLimits decodes the edge attributes that bound what clients and
// endpoints may hold: body and stream timeouts, the connection cap and the
// proxies whose forwarding headers are believed.
func (d *decoder) edgeLimits(a hcl.Attributes, e *EdgeConfig) {
	d.duration(a, "request_body_timeout", &e.RequestBodyTimeout, true)
	d.duration(a, "write_timeout", &e.WriteTimeout, true)
	d.duration(a, "stream_idle_timeout", &e.StreamIdleTimeout, true)
	d.nonNegative(a, "max_connections", &e.MaxConnections)
	if rng, ok := d.integer(a, "max_conns_per_endpoint", &e.MaxConnsPerEndpoint); ok && e.MaxConnsPerEndpoint < 1 {
		d.errorf(rng, "Invalid connection cap", "max_conns_per_endpoint must be at least 1; got %d.", e.MaxConnsPerEndpoint)
	}
	d.trustedProxies(a, e)
}

// trustedProxies decodes a list of CIDR prefixes ("10.0.0.0/8") or single
// addresses ("192.0.2.7", taken as /32 or /128).
func (d *decoder) trustedProxies(attrs hcl.Attributes, e *EdgeConfig) {
	const name = "trusted_proxies"
	a, ok := attrs[name]
	if !ok {
		return
	}
	v, rng, ok := d.value(attrs, name, cty.List(cty.String))
	if !ok {
		return
	}
	elems, diags := hcl.ExprList(a.Expr)
	elemRange := func(i int) hcl.Range {
		if !diags.HasErrors() && i < len(elems) {
			return elems[i].Range()
		}
		return rng
	}
	var out []netip.Prefix
	for i, ev := range v.AsValueSlice() {
		if ev.IsNull() {
			d.errorf(elemRange(i), "Invalid trusted proxy", "Element %d of %s is null.", i, name)
			continue
		}
		p, err := parseProxy(ev.AsString())
		if err != nil {
			d.errorf(elemRange(i), "Invalid trusted proxy", "Element %d of %s, %q, is neither an address nor a CIDR prefix such as \"10.0.0.0/8\".", i, name, ev.AsString())
			continue
		}
		out = append(out, p)
	}
	e.TrustedProxies = out
}

func parseProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}
