package provision

import (
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on what one message may carry. A message is configuration, not
// content: these are generous for that and keep a hostile producer from
// making the provisioner hold or log megabytes per field.
const (
	MaxTextLen    = 1024 // bytes in any free text field
	MaxLabelLen   = 63   // bytes in a DNS label (RFC 1035)
	MaxHostLen    = 253  // bytes in a host name, without a trailing dot
	MaxAliases    = 100  // domains.aliases elements
	MaxDNSRecords = 1000 // dns.records elements
)

// checkText refuses text that is too long, not UTF-8, or holds control
// characters (which would garble logs and JSON consumers downstream).
func checkText(field, s string, max int) error {
	if len(s) > max {
		return fieldErr(field, ErrTooLong, "%d bytes, at most %d", len(s), max)
	}
	if !utf8.ValidString(s) {
		return fieldErr(field, ErrBadText, "invalid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fieldErr(field, ErrBadText, "control character %U", r)
		}
	}
	return nil
}

// checkLabel accepts a lower-case DNS label: 1 to 63 of a-z, 0-9 and '-',
// not starting or ending with '-'. Site ids are labels so that they can name
// directories, apps and DNS records without escaping.
func checkLabel(field, s string) error {
	if s == "" {
		return fieldErr(field, ErrRequired, "")
	}
	if len(s) > MaxLabelLen {
		return fieldErr(field, ErrTooLong, "%d bytes, a label has at most %d", len(s), MaxLabelLen)
	}
	if err := labelSyntax(s); err != "" {
		return fieldErr(field, ErrBadLabel, "%q: %s", clip(s), err)
	}
	return nil
}

func labelSyntax(s string) string {
	if s[0] == '-' || s[len(s)-1] == '-' {
		return "starts or ends with '-'"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return "only a-z, 0-9 and '-' are allowed"
		}
	}
	return ""
}

// normHost lower-cases a host name, drops one trailing dot and checks it:
// at most 253 bytes of labels of at most 63 bytes each, letters, digits and
// inner hyphens only (no wildcards, no ports, no IP literals in brackets).
func normHost(field, s string) (string, error) {
	if s == "" {
		return "", fieldErr(field, ErrRequired, "")
	}
	h := strings.ToLower(strings.TrimSuffix(s, "."))
	if len(h) > MaxHostLen {
		return "", fieldErr(field, ErrTooLong, "%d bytes, a host name has at most %d", len(h), MaxHostLen)
	}
	if h == "" {
		return "", fieldErr(field, ErrBadHost, "%q", clip(s))
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" {
			return "", fieldErr(field, ErrBadHost, "%q: empty label", clip(s))
		}
		if len(l) > MaxLabelLen {
			return "", fieldErr(field, ErrBadHost, "%q: label longer than %d bytes", clip(s), MaxLabelLen)
		}
		if why := labelSyntax(l); why != "" {
			return "", fieldErr(field, ErrBadHost, "%q: %s", clip(s), why)
		}
	}
	return h, nil
}

// checkRelPath accepts a slash-separated relative path that stays inside the
// directory it is resolved against: no leading '/', no '..' element, no
// backslash. "" and "." both mean the directory itself.
func checkRelPath(field, p string) (string, error) {
	if err := checkText(field, p, MaxTextLen); err != nil {
		return "", err
	}
	if p == "" {
		return ".", nil
	}
	if strings.HasPrefix(p, "/") || strings.Contains(p, "\\") {
		return "", fieldErr(field, ErrBadPath, "%q", clip(p))
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", fieldErr(field, ErrBadPath, "%q climbs out with '..'", clip(p))
		}
	}
	return path.Clean(p), nil
}

// clip shortens a value quoted in an error so that a refusal never echoes a
// kilobyte of attacker-chosen text.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
