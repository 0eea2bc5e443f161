package edge

import (
	"net/http"
	"net/netip"
	"strings"
)

// Forwarding headers (X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto,
// X-Real-IP, Forwarded) describe the client as some proxy saw it. Anyone can
// send them, so the edge believes them only from the addresses listed in
// Options.TrustedProxies: a request from a trusted proxy keeps its chain
// (the edge appends the proxy's own address to X-Forwarded-For), any other
// request has them replaced by what the edge saw itself (X-Real-IP and
// Forwarded only when the client sent them). The check is a scan
// of a short list of parsed prefixes; it neither locks nor allocates.

// trustedPeer reports whether remote (a RemoteAddr, "ip:port") is inside one
// of the trusted prefixes.
func trustedPeer(prefixes []netip.Prefix, remote string) bool {
	if len(prefixes) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// forwardingHeader reports the request headers that carry client identity
// and are set by the edge.
func forwardingHeader(k string) bool {
	switch k {
	case "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "Forwarded":
		return true
	}
	return false
}

// setForwarded writes the forwarding headers of the request to send into h,
// which holds none of them yet.
func setForwarded(h http.Header, r *http.Request, trusted bool) {
	forwardedFields(r, trusted, func(k, v string) { h[k] = append(h[k], v) })
}

// forwardedFields calls add with each forwarding field of the request to
// send, one call per value.
func forwardedFields(r *http.Request, trusted bool, add func(k, v string)) {
	ip := clientIP(r.RemoteAddr)
	proto := protoHTTP[0]
	if r.TLS != nil {
		proto = protoHTTPS[0]
	}
	if !trusted {
		add("X-Forwarded-For", ip)
		add("X-Forwarded-Host", r.Host)
		add("X-Forwarded-Proto", proto)
		// The others are replaced when the client sent them, and not
		// added otherwise: every header costs each workload a parse.
		if _, ok := r.Header["X-Real-Ip"]; ok {
			add("X-Real-Ip", ip)
		}
		if _, ok := r.Header["Forwarded"]; ok {
			add("Forwarded", forwardedFor(ip, proto))
		}
		return
	}
	if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 {
		ip = strings.Join(prior, ", ") + ", " + ip
	}
	add("X-Forwarded-For", ip)
	keep := func(k string) bool {
		vv, ok := r.Header[k]
		for _, v := range vv {
			add(k, v)
		}
		return ok
	}
	keep("X-Real-Ip")
	keep("Forwarded")
	if !keep("X-Forwarded-Host") {
		add("X-Forwarded-Host", r.Host)
	}
	if !keep("X-Forwarded-Proto") {
		add("X-Forwarded-Proto", proto)
	}
}

// forwardedFor is an RFC 7239 Forwarded element for a client at ip.
func forwardedFor(ip, proto string) string {
	if strings.IndexByte(ip, ':') >= 0 {
		return `for="[` + ip + `]";proto=` + proto
	}
	return "for=" + ip + ";proto=" + proto
}
