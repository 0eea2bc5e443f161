package rollout

import (
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// goodIndex is what a Store keeps in memory to answer LastGood without
// reading or decoding any record: for each app, the kept rollouts that
// proved a digest good (Rollout.Good), oldest first. It is built once when
// the store opens and changed only after a write transaction committed, so
// it always describes what is on disk.
type goodIndex struct {
	mu   sync.Mutex
	apps map[string][]goodEntry
}

type goodEntry struct {
	seq    uint64
	digest string
}

// load fills the index from every record of the store (in sequence order).
func (g *goodIndex) load(tx *bolt.Tx) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.apps = map[string][]goodEntry{}
	all := tx.Bucket(bucketRollouts)
	if all == nil {
		return nil
	}
	return all.ForEach(func(k, _ []byte) error {
		r, err := getRollout(all, k)
		if err != nil {
			return err
		}
		if d := r.Good(); d != "" {
			g.apps[r.App] = append(g.apps[r.App], goodEntry{r.Seq, d})
		}
		return nil
	})
}

// set records what rollout r proves now (nothing, when it is not good).
func (g *goodIndex) set(r Rollout) {
	g.mu.Lock()
	defer g.mu.Unlock()
	es := g.apps[r.App]
	i, found := slices.BinarySearchFunc(es, r.Seq, func(e goodEntry, seq uint64) int {
		switch {
		case e.seq < seq:
			return -1
		case e.seq > seq:
			return 1
		}
		return 0
	})
	d := r.Good()
	switch {
	case found && d == "":
		es = slices.Delete(es, i, i+1)
	case found:
		es[i].digest = d
	case d != "":
		es = slices.Insert(es, i, goodEntry{r.Seq, d})
	}
	g.apps[r.App] = es
}

// drop forgets the pruned rollouts seqs of app.
func (g *goodIndex) drop(app string, seqs []uint64) {
	if len(seqs) == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.apps[app] = slices.DeleteFunc(g.apps[app], func(e goodEntry) bool {
		return slices.Contains(seqs, e.seq)
	})
}

// lastGood is LastGood over the kept history of app.
func (g *goodIndex) lastGood(app, except string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	es := g.apps[app]
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].digest != except {
			return es[i].digest
		}
	}
	return ""
}

// LastGood returns the newest digest other than except that a kept rollout
// of app proved good, or "": LastGood(History(app, 0), except), answered
// from memory. A deploy asks it on every call.
func (s *Store) LastGood(app, except string) string {
	return s.good.lastGood(app, except)
}
