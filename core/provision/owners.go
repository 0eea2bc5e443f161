package provision

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Owners records, per site and backend, the resources the provisioner
// created, so that it only ever removes what it owns. Each site is one
// small JSON file under Dir, replaced atomically (write, fsync, rename).
type Owners struct {
	Dir string
}

type ownerFile struct {
	Site     string                `json:"site"`
	Backends map[string][]Resource `json:"backends"`
}

func (o *Owners) path(site string) string { return filepath.Join(o.Dir, site+".json") }

// Load returns what the provisioner owns for site through backend.
func (o *Owners) Load(site, backend string) ([]Resource, error) {
	f, err := o.read(site)
	if err != nil {
		return nil, err
	}
	return f.Backends[backend], nil
}

func (o *Owners) read(site string) (ownerFile, error) {
	f := ownerFile{Site: site, Backends: map[string][]Resource{}}
	b, err := os.ReadFile(o.path(site))
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read ownership of %s: %w", site, err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("decode ownership of %s (%s): %w", site, o.path(site), err)
	}
	if f.Backends == nil {
		f.Backends = map[string][]Resource{}
	}
	return f, nil
}

// Record applies performed actions to the ownership of site through
// backend: created and updated resources become owned, deleted ones are
// forgotten. It writes only when the record changes.
func (o *Owners) Record(site, backend string, done []Action) error {
	f, err := o.read(site)
	if err != nil {
		return err
	}
	set := map[Resource]bool{}
	for _, r := range f.Backends[backend] {
		set[r] = true
	}
	changed := false
	for _, a := range done {
		r := Resource{Kind: a.Kind, Key: a.Key}
		switch a.Op {
		case OpCreate, OpUpdate:
			if !set[r] {
				set[r], changed = true, true
			}
		case OpDelete:
			if set[r] {
				delete(set, r)
				changed = true
			}
		}
	}
	if !changed {
		return nil
	}
	list := make([]Resource, 0, len(set))
	for r := range set {
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].Kind != list[j].Kind {
			return list[i].Kind < list[j].Kind
		}
		return list[i].Key < list[j].Key
	})
	if len(list) == 0 {
		delete(f.Backends, backend)
	} else {
		f.Backends[backend] = list
	}
	return o.write(site, f)
}

func (o *Owners) write(site string, f ownerFile) error {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("create ownership dir: %w", err)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode ownership of %s: %w", site, err)
	}
	tmp, err := os.CreateTemp(o.Dir, site+".*.tmp")
	if err != nil {
		return fmt.Errorf("write ownership of %s: %w", site, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write ownership of %s: %w", site, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync ownership of %s: %w", site, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close ownership of %s: %w", site, err)
	}
	if err := os.Rename(tmp.Name(), o.path(site)); err != nil {
		return fmt.Errorf("replace ownership of %s: %w", site, err)
	}
	return nil
}
