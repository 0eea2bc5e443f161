package spore

import "errors"

// Sentinel errors. Every refusal from Verify, Extract, Pack and the key
// functions wraps exactly one of them with the details of what failed.
var (
	// ErrBadArchive: the file is not a readable zip archive, or an entry is
	// encrypted, uses an unsupported compression method or fails its CRC.
	ErrBadArchive = errors.New("not a valid spore archive")
	// ErrUnsafeEntry: an entry is a directory, link or other non-regular
	// file, or its name is absolute, holds "..", a backslash or control bytes.
	ErrUnsafeEntry = errors.New("unsafe archive entry")
	// ErrExtraEntry: the archive holds an entry other than manifest.json and binary.
	ErrExtraEntry = errors.New("unexpected archive entry")
	// ErrMissingEntry: manifest.json or binary is absent.
	ErrMissingEntry = errors.New("missing archive entry")
	// ErrDuplicateEntry: an entry name appears more than once.
	ErrDuplicateEntry = errors.New("duplicate archive entry")
	// ErrManifestTooLarge: manifest.json declares or inflates to more than MaxManifestSize.
	ErrManifestTooLarge = errors.New("manifest too large")
	// ErrTooLarge: the binary exceeds MaxBinarySize, or an entry inflates
	// past the size its header declares (a zip bomb).
	ErrTooLarge = errors.New("entry too large")
	// ErrSizeMismatch: an entry ends before the size its header declares.
	ErrSizeMismatch = errors.New("entry size mismatch")
	// ErrBadManifest: manifest.json is not valid JSON of the manifest schema,
	// or a required field is missing or malformed.
	ErrBadManifest = errors.New("invalid manifest")
	// ErrWrongKind: identity.kind is not "Spore".
	ErrWrongKind = errors.New("wrong manifest kind")
	// ErrBinaryDigest: the binary's SHA-256 differs from integrity.binary_sha256.
	ErrBinaryDigest = errors.New("binary digest mismatch")
	// ErrBadSignature: the signature does not verify against the manifest's key.
	ErrBadSignature = errors.New("bad signature")
	// ErrUntrustedKey: the signer's key is not in the trusted set (or the set is empty).
	ErrUntrustedKey = errors.New("signer key not trusted")
	// ErrBadKey: a key's text or file is malformed.
	ErrBadKey = errors.New("invalid key")
	// ErrInsecureKeyFile: a private key file is readable by group or others.
	ErrInsecureKeyFile = errors.New("private key file permissions too open")
)
