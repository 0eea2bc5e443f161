package mesh

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/fabric"
)

// What runs and what the file says are kept apart:
//
//   - The fabric (data_dir/fabric.db) holds what runs: each app's plan, whose
//     digest `mesh deploy` may have changed since mesh.hcl was applied.
//   - The applied state (data_dir/applied.json) holds what mesh.hcl said the
//     last time it was applied: per app, the digest its spore or digest
//     attribute named then.
//
// Applying the file (at start, `mesh reload`, SIGHUP) publishes the file's
// digest for an app only when that digest differs from the one recorded:
// the operator changed the app's spore or digest in the file. Any other
// change of the block (max, budget, ...) keeps the digest the plan names.

// appliedVersion is the version of the applied-state file written today.
const appliedVersion = 2

// appliedState is the content of data_dir/applied.json.
type appliedState struct {
	Version int                   `json:"version"`
	Apps    map[string]appliedApp `json:"apps"`
}

// appliedApp is what one app block said when it was last applied.
type appliedApp struct {
	// Spore is the spore path the block named, "" for a digest block.
	Spore string `json:"spore,omitempty"`
	// Digest is the digest the block's spore or digest attribute named.
	Digest string `json:"digest"`
}

func appliedPath(dataDir string) string { return filepath.Join(dataDir, "applied.json") }

// readApplied reads the applied state; a missing file is an empty state.
// The first format (an object mapping each app to "<block hash>|<digest>")
// is read too: its digest is the one the block named.
func readApplied(path string) (appliedState, error) {
	st := appliedState{Version: appliedVersion, Apps: map[string]appliedApp{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read applied state: %w", err)
	}
	var probe struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return st, fmt.Errorf("decode applied state %s: %w (remove the file to re-apply mesh.hcl's app blocks; the plans in fabric.db are kept)", path, err)
	}
	if probe.Version == 0 {
		old := map[string]string{}
		if err := json.Unmarshal(b, &old); err != nil {
			return st, fmt.Errorf("decode applied state %s: %w (remove the file to re-apply mesh.hcl's app blocks; the plans in fabric.db are kept)", path, err)
		}
		for app, v := range old {
			_, digest, _ := strings.Cut(v, "|")
			st.Apps[app] = appliedApp{Digest: digest}
		}
		return st, nil
	}
	if probe.Version > appliedVersion {
		return st, fmt.Errorf("applied state %s has version %d; this mesh reads up to %d (a newer mesh wrote it)", path, probe.Version, appliedVersion)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("decode applied state %s: %w (remove the file to re-apply mesh.hcl's app blocks; the plans in fabric.db are kept)", path, err)
	}
	if st.Apps == nil {
		st.Apps = map[string]appliedApp{}
	}
	return st, nil
}

// writeApplied replaces the applied-state file atomically.
func writeApplied(path string, st appliedState) error {
	st.Version = appliedVersion
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode applied state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".applied-*")
	if err != nil {
		return fmt.Errorf("write applied state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write applied state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync applied state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write applied state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace applied state: %w", err)
	}
	return nil
}

// ErrStateLost is returned when the fabric store has lost plans that the
// applied state records: the digests deployed since are unknown, and starting
// over from mesh.hcl would silently roll those apps back.
var ErrStateLost = errors.New("fabric state lost")

// checkState compares the fabric with the applied state before anything
// starts. An app that mesh.hcl still configures, that applied.json records as
// applied, and that has no plan in the fabric means fabric.db was emptied,
// replaced or lost. The mesh refuses to start then and says how to recover.
func checkState(cfg *config.Config, f fabric.Store) error {
	path := appliedPath(cfg.DataDir)
	st, err := readApplied(path)
	if err != nil {
		return err
	}
	var lost []string
	for name := range st.Apps {
		if _, configured := cfg.App(name); !configured {
			continue // being removed: a plan already deleted is fine
		}
		if _, ok := f.Plan(name); !ok {
			lost = append(lost, fmt.Sprintf("%q", name))
		}
	}
	if len(lost) == 0 {
		return nil
	}
	sort.Strings(lost)
	return fmt.Errorf("%w: %s records app(s) %s as applied, but %s holds no plan for them: the store was emptied, replaced or lost, so the digests deployed since are unknown. Restore %s from a backup, or remove %s to start these apps over from the digests in mesh.hcl",
		ErrStateLost, path, strings.Join(lost, ", "), filepath.Join(cfg.DataDir, "fabric.db"), filepath.Join(cfg.DataDir, "fabric.db"), path)
}

// corruptStoreError adds to a fabric.ErrCorrupt what moving the store aside
// implies for the applied state.
func corruptStoreError(cfg *config.Config, err error) error {
	return fmt.Errorf("%w. An empty fabric next to %s that records apps is refused too: move both aside to start over from the digests in mesh.hcl", err, appliedPath(cfg.DataDir))
}
