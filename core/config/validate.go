package config

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/mycelium-mesh/mesh/core/repo"
)

// nameRE is the shape of app names, plugin names and node IDs: each ends up
// in a URL path segment or a directory name, so nothing else is allowed.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

func validName(s string) bool { return nameRE.MatchString(s) }

// parseDigest validates a spore digest and returns its canonical
// "sha256:<64 lowercase hex>" form.
func parseDigest(s string) (string, error) {
	return repo.NormalizeDigest(strings.TrimSpace(s))
}

// parseSHA256 validates a plugin executable's sha256, written bare or with a
// "sha256:" prefix, and returns it as 64 lowercase hex.
func parseSHA256(s string) (string, error) {
	return repo.ParseDigest(strings.TrimSpace(s))
}

// checkHostPort checks a listen address of the form host:port, where host
// may be empty (all interfaces), an IP address or a host name, and port is a
// number from 0 to 65535.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if host == "" || net.ParseIP(host) != nil {
		return nil
	}
	if strings.Contains(host, "%") {
		return nil // zoned IPv6 literal
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || !hostLabelRE.MatchString(label) {
			return fmt.Errorf("host %q is neither an IP address nor a host name", host)
		}
	}
	return nil
}

var hostLabelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$`)

// IsLoopback reports whether a host:port listens on loopback only: a
// loopback IP address or "localhost". An empty host (every interface) is not.
func IsLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
