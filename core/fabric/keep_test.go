package fabric

import "testing"

// TestKeepReleasesInProcess: the embedded store's claims live and die with
// the process, so Lease.Keep gives the claim back as Release does, and a
// Release after it changes nothing.
func TestKeepReleasesInProcess(t *testing.T) {
	f := newFabric(t, t.TempDir())
	if err := f.PublishPlan(Plan{AppName: "web", Digest: digest(1), Max: 1}); err != nil {
		t.Fatal(err)
	}
	l, err := f.Acquire("web", "n1", 100, 64)
	if err != nil {
		t.Fatal(err)
	}
	l.Keep()
	if u := f.Usage("web"); u.Instances != 0 {
		t.Fatalf("%d instances claimed after Keep, want 0", u.Instances)
	}
	l2, err := f.Acquire("web", "n2", 100, 64)
	if err != nil {
		t.Fatalf("slot not free after Keep: %v", err)
	}
	l.Release()
	if u := f.Usage("web"); u.Instances != 1 {
		t.Fatalf("a Release after Keep gave back another claim: %d instances, want 1", u.Instances)
	}
	l2.Release()
}
