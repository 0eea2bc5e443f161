package mesh

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

func readApplied(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read applied state: %w", err)
	}
	m := map[string]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode applied state %s: %w", path, err)
	}
	return m, nil
}

// writeApplied replaces the applied-state file atomically.
func writeApplied(path string, m map[string]string) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode applied state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".applied-*")
	if err != nil {
		return fmt.Errorf("write applied state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
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
