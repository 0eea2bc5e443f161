package spore

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Kind is the only accepted identity.kind.
const Kind = "Spore"

// Command is the only accepted runtime.command: the packed binary, relative
// to the directory the spore is extracted into.
const Command = "./binary"

// Entry names inside a spore.
const (
	ManifestEntry = "manifest.json"
	BinaryEntry   = "binary"
)

// Size limits enforced by Pack, Verify and Extract.
const (
	MaxManifestSize = 1 << 20 // bytes of manifest.json
	MaxBinarySize   = 4 << 30 // bytes of the uncompressed binary
)

// maxInt is the largest integer a manifest may hold (2^53-1), so that every
// JSON implementation reads it exactly.
const maxInt = 1<<53 - 1

// Manifest describes a spore. The JSON form is documented in the package doc.
type Manifest struct {
	Identity  Identity  `json:"identity"`
	Runtime   Runtime   `json:"runtime"`
	Resources Resources `json:"resources"`
	SLO       SLO       `json:"slo"`
	Security  Security  `json:"security"`
	Integrity Integrity `json:"integrity"`
}

// Identity names the workload.
type Identity struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Runtime says how the binary is started.
type Runtime struct {
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env"`
}

// Resources holds the resources the workload asks for.
type Resources struct {
	Nutrients Nutrients `json:"nutrients"`
}

// Nutrients are CPU (thousandths of a core) and memory (MiB).
type Nutrients struct {
	CPUMilli int `json:"cpu_milli"`
	MemoryMB int `json:"memory_mb"`
}

// SLO holds the workload's service level objective.
type SLO struct {
	P99BudgetMS int `json:"p99_budget_ms"`
}

// Security holds confinement settings (recorded, not enforced yet).
type Security struct {
	LSMProfile string `json:"lsm_profile"`
	ReadOnlyFS bool   `json:"read_only_fs"`
}

// Integrity binds the manifest to its binary and signer. Pack fills it.
type Integrity struct {
	BinarySHA256 string `json:"binary_sha256"` // 64 lowercase hex
	Signature    string `json:"signature"`     // base64 of the ed25519 signature
	PublicKey    string `json:"public_key"`    // "ed25519:<base64>"
	CreatedAt    string `json:"created_at"`    // RFC 3339, UTC
}

var sections = []string{"identity", "runtime", "resources", "slo", "security", "integrity"}

// DecodeManifest decodes and validates a signed manifest.json: strict JSON
// (one object, no unknown members, all sections present), required fields
// present and well formed, kind "Spore". It does not check the signature.
func DecodeManifest(b []byte) (Manifest, error) {
	m, err := decodeStrict(b, sections)
	if err != nil {
		return Manifest{}, err
	}
	if err := m.validate(true); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// DecodeUnsigned decodes the manifest an operator writes before packing: it
// may hold identity, runtime, resources, slo and security (identity is
// required, the rest optional), never integrity, which Pack fills. A missing
// kind defaults to "Spore" and a missing command to "./binary".
func DecodeUnsigned(b []byte) (Manifest, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err == nil {
		if _, ok := probe["integrity"]; ok {
			return Manifest{}, fmt.Errorf("%w: integrity is filled in by pack and must not be written by hand", ErrBadManifest)
		}
	}
	m, err := decodeStrict(b, []string{"identity"})
	if err != nil {
		return Manifest{}, err
	}
	if err := m.prepare(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// decodeStrict decodes one JSON object into a Manifest, refusing unknown
// members, trailing data and missing required top-level sections.
func decodeStrict(b []byte, required []string) (Manifest, error) {
	if len(b) > MaxManifestSize {
		return Manifest{}, fmt.Errorf("%w: %d bytes, limit %d", ErrManifestTooLarge, len(b), MaxManifestSize)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Manifest{}, fmt.Errorf("%w: trailing data after the JSON object", ErrBadManifest)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return Manifest{}, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	for _, s := range required {
		raw, ok := top[s]
		if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			return Manifest{}, fmt.Errorf("%w: section %q missing", ErrBadManifest, s)
		}
	}
	return m, nil
}

// prepare fills defaults and validates everything but integrity; it is what
// Pack and DecodeUnsigned apply to an operator's manifest.
func (m *Manifest) prepare() error {
	if m.Identity.Kind == "" {
		m.Identity.Kind = Kind
	}
	if m.Runtime.Command == "" {
		m.Runtime.Command = Command
	}
	if m.Runtime.Args == nil {
		m.Runtime.Args = []string{}
	}
	if m.Runtime.Env == nil {
		m.Runtime.Env = map[string]string{}
	}
	return m.validate(false)
}

// validate checks the fields; withIntegrity also requires a complete,
// well-formed integrity section.
func (m *Manifest) validate(withIntegrity bool) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadManifest}, a...)...)
	}
	id := m.Identity
	switch {
	case id.Kind == "":
		return bad("identity.kind missing")
	case id.Kind != Kind:
		return fmt.Errorf("%w: identity.kind is %q, want %q", ErrWrongKind, id.Kind, Kind)
	case id.Name == "":
		return bad("identity.name missing")
	case !validToken(id.Name, "._-"):
		return bad("identity.name %q: want 1-128 characters from [A-Za-z0-9._-] starting with a letter or digit", id.Name)
	case id.Version == "":
		return bad("identity.version missing")
	case !validToken(id.Version, "._+~-"):
		return bad("identity.version %q: want 1-128 characters from [A-Za-z0-9._+~-] starting with a letter or digit", id.Version)
	}
	if m.Runtime.Command == "" {
		return bad("runtime.command missing")
	}
	if m.Runtime.Command != Command {
		return bad("runtime.command is %q, must be %q (the packed binary)", m.Runtime.Command, Command)
	}
	for i, a := range m.Runtime.Args {
		if !utf8.ValidString(a) || containsNUL(a) {
			return bad("runtime.args[%d] is not valid text", i)
		}
	}
	for k, v := range m.Runtime.Env {
		if k == "" || !utf8.ValidString(k) || containsNUL(k) || containsByte(k, '=') {
			return bad("runtime.env key %q is not a valid variable name", k)
		}
		if !utf8.ValidString(v) || containsNUL(v) {
			return bad("runtime.env[%q] is not valid text", k)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"resources.nutrients.cpu_milli", m.Resources.Nutrients.CPUMilli},
		{"resources.nutrients.memory_mb", m.Resources.Nutrients.MemoryMB},
		{"slo.p99_budget_ms", m.SLO.P99BudgetMS},
	} {
		if n.v < 0 || n.v > maxInt {
			return bad("%s is %d, want 0..%d", n.name, n.v, maxInt)
		}
	}
	if !utf8.ValidString(m.Security.LSMProfile) {
		return bad("security.lsm_profile is not valid UTF-8")
	}
	if !withIntegrity {
		return nil
	}
	in := m.Integrity
	switch {
	case in.BinarySHA256 == "":
		return bad("integrity.binary_sha256 missing")
	case !isLowerHex(in.BinarySHA256, sha256.Size*2):
		return bad("integrity.binary_sha256 %q is not 64 lowercase hex digits", in.BinarySHA256)
	case in.Signature == "":
		return bad("integrity.signature missing")
	case in.PublicKey == "":
		return bad("integrity.public_key missing")
	case in.CreatedAt == "":
		return bad("integrity.created_at missing")
	}
	if _, err := decodeSignature(in.Signature); err != nil {
		return bad("integrity.signature: %v", err)
	}
	if _, err := ParsePublicKey(in.PublicKey); err != nil {
		return bad("integrity.public_key: %v", err)
	}
	if _, err := time.Parse(time.RFC3339, in.CreatedAt); err != nil {
		return bad("integrity.created_at %q is not RFC 3339", in.CreatedAt)
	}
	return nil
}

func decodeSignature(s string) ([]byte, error) {
	sig, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not standard base64: %v", err)
	}
	if len(sig) != 64 {
		return nil, fmt.Errorf("%d bytes, want 64", len(sig))
	}
	return sig, nil
}

func validToken(s, punct string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if alnum {
			continue
		}
		if i == 0 || !containsByte(punct, c) {
			return false
		}
	}
	return true
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func containsNUL(s string) bool { return containsByte(s, 0) }

func containsByte(s string, b byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return true
		}
	}
	return false
}

// Canonical returns the canonical byte form of m with integrity.signature
// set to "": the first part of the signed message (see the package doc).
func Canonical(m Manifest) ([]byte, error) {
	if err := m.validate(false); err != nil {
		return nil, err
	}
	for _, s := range []string{m.Integrity.BinarySHA256, m.Integrity.PublicKey, m.Integrity.CreatedAt} {
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("%w: integrity holds invalid UTF-8", ErrBadManifest)
		}
	}
	return canonicalBytes(m), nil
}

// canonicalBytes serializes m canonically without validating it.
func canonicalBytes(m Manifest) []byte {
	var b bytes.Buffer
	b.WriteString(`{"identity":{"kind":`)
	writeString(&b, m.Identity.Kind)
	b.WriteString(`,"name":`)
	writeString(&b, m.Identity.Name)
	b.WriteString(`,"version":`)
	writeString(&b, m.Identity.Version)
	b.WriteString(`},"integrity":{"binary_sha256":`)
	writeString(&b, m.Integrity.BinarySHA256)
	b.WriteString(`,"created_at":`)
	writeString(&b, m.Integrity.CreatedAt)
	b.WriteString(`,"public_key":`)
	writeString(&b, m.Integrity.PublicKey)
	b.WriteString(`,"signature":""},"resources":{"nutrients":{"cpu_milli":`)
	b.WriteString(strconv.Itoa(m.Resources.Nutrients.CPUMilli))
	b.WriteString(`,"memory_mb":`)
	b.WriteString(strconv.Itoa(m.Resources.Nutrients.MemoryMB))
	b.WriteString(`}},"runtime":{"args":[`)
	for i, a := range m.Runtime.Args {
		if i > 0 {
			b.WriteByte(',')
		}
		writeString(&b, a)
	}
	b.WriteString(`],"command":`)
	writeString(&b, m.Runtime.Command)
	b.WriteString(`,"env":{`)
	keys := make([]string, 0, len(m.Runtime.Env))
	for k := range m.Runtime.Env {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return lessUTF16(keys[i], keys[j]) })
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		writeString(&b, k)
		b.WriteByte(':')
		writeString(&b, m.Runtime.Env[k])
	}
	b.WriteString(`}},"security":{"lsm_profile":`)
	writeString(&b, m.Security.LSMProfile)
	b.WriteString(`,"read_only_fs":`)
	b.WriteString(strconv.FormatBool(m.Security.ReadOnlyFS))
	b.WriteString(`},"slo":{"p99_budget_ms":`)
	b.WriteString(strconv.Itoa(m.SLO.P99BudgetMS))
	b.WriteString(`}}`)
	return b.Bytes()
}

// signedDigest is SHA-256(Canonical(m) || binary_sha256), the message that
// the ed25519 signature covers.
func signedDigest(m Manifest) ([]byte, error) {
	c, err := Canonical(m)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(c)
	h.Write([]byte(m.Integrity.BinarySHA256))
	return h.Sum(nil), nil
}

// writeString writes s as an RFC 8785 JSON string.
func writeString(b *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

// lessUTF16 orders strings by their UTF-16 code units, as RFC 8785 sorts keys.
func lessUTF16(a, b string) bool {
	ua, ub := utf16.Encode([]rune(a)), utf16.Encode([]rune(b))
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			return ua[i] < ub[i]
		}
	}
	return len(ua) < len(ub)
}

// encodePretty renders m as indented JSON for manifest.json and for people.
func encodePretty(m Manifest) ([]byte, error) {
	if m.Runtime.Args == nil {
		m.Runtime.Args = []string{}
	}
	if m.Runtime.Env == nil {
		m.Runtime.Env = map[string]string{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// MarshalIndent renders m as indented JSON (args and env always present).
func (m Manifest) MarshalIndent() ([]byte, error) { return encodePretty(m) }
