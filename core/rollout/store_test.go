package rollout

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func TestStorePersistsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rollouts.db")
	s, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := Rollout{App: "billing", Digest: "sha256:22", State: Pending, Started: time.Unix(1000, 0).UTC()}
	if err := s.Create(&r, nil); err != nil {
		t.Fatal(err)
	}
	if r.ID != "billing-1" {
		t.Fatalf("id %q", r.ID)
	}
	if err := r.To(Progressing, time.Unix(1001, 0), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(r); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	act, err := s.Active()
	if err != nil || len(act) != 1 || act[0].ID != r.ID || act[0].State != Progressing {
		t.Fatalf("active after reopen: %+v %v", act, err)
	}
	got, err := s.Get("billing-1")
	if err != nil || got.Digest != r.Digest || !got.Started.Equal(r.Started) {
		t.Fatalf("get: %+v %v", got, err)
	}
	for _, id := range []string{"billing-2", "other-1", "nope", "billing-x"} {
		if _, err := s.Get(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("get %q: %v, want ErrNotFound", id, err)
		}
	}
	if err := s.Save(Rollout{ID: "billing-9", Seq: 9}); !errors.Is(err, ErrNotFound) {
		t.Errorf("save of an unknown rollout: %v", err)
	}
}

func TestStoreHistoryBounded(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "rollouts.db"), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The first rollout of billing stays active: pruning never drops it.
	for i := 1; i <= 6; i++ {
		st := Succeeded
		if i == 1 {
			st = Progressing
		}
		r := Rollout{App: "billing", Digest: fmt.Sprintf("sha256:%02d", i), State: st}
		if err := s.Create(&r, nil); err != nil {
			t.Fatal(err)
		}
		o := Rollout{App: "other", State: Succeeded}
		if err := s.Create(&o, nil); err != nil {
			t.Fatal(err)
		}
	}
	h, err := s.History("billing", 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range h {
		ids = append(ids, r.ID)
	}
	want := []string{"billing-11", "billing-9", "billing-1"} // newest first; kept: 3, the active one among them
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("history %v, want %v", ids, want)
	}
	if h, _ := s.History("billing", 1); len(h) != 1 || h[0].ID != "billing-11" {
		t.Fatalf("history limited to 1: %+v", h)
	}
	if h, _ := s.History("other", 0); len(h) != 3 {
		t.Fatalf("other app keeps its own 3: %d", len(h))
	}
	if _, err := s.Get("billing-3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pruned rollout still readable: %v", err)
	}
	if h, _ := s.History("nobody", 0); len(h) != 0 {
		t.Fatalf("unknown app has history %+v", h)
	}
}

// Create saves the rollout a new one replaces in the same transaction,
// with the new rollout's ID known to the edit.
func TestStoreCreateReplacing(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "rollouts.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := Rollout{App: "billing", State: Progressing}
	if err := s.Create(&old, nil); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(2000, 0)
	next := Rollout{App: "billing", State: Pending}
	err = s.Create(&next, func(n *Rollout) []Rollout {
		if err := old.To(Superseded, now, "superseded by "+n.ID); err != nil {
			t.Fatal(err)
		}
		return []Rollout{old}
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(old.ID)
	if err != nil || got.State != Superseded || got.Detail != "superseded by billing-2" {
		t.Fatalf("replaced rollout: %+v %v", got, err)
	}
	// An edit naming a rollout the store does not hold fails the whole write.
	ghost := Rollout{App: "billing", State: Pending}
	err = s.Create(&ghost, func(*Rollout) []Rollout { return []Rollout{{ID: "billing-99", Seq: 99}} })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("create with an unknown replaced rollout: %v", err)
	}
	if h, _ := s.History("billing", 0); len(h) != 2 {
		t.Fatalf("failed create left a record: %d rollouts", len(h))
	}
}
