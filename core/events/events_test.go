package events

import (
	"sync"
	"testing"
)

func TestRecentKeepsNewestInOrder(t *testing.T) {
	tests := []struct {
		name    string
		history int
		publish int
		want    []uint64
	}{
		{"fewer than kept", 4, 2, []uint64{1, 2}},
		{"exactly kept", 3, 3, []uint64{1, 2, 3}},
		{"ring wrapped", 3, 7, []uint64{5, 6, 7}},
		{"nothing yet", 3, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(tt.history, 8)
			for i := 0; i < tt.publish; i++ {
				b.Publish(Event{Type: PlanPublished, App: "a"})
			}
			var got []uint64
			for _, e := range b.Recent(Filter{}) {
				got = append(got, e.Seq)
				if e.Time.IsZero() {
					t.Errorf("event %d has no time", e.Seq)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("seqs %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("seqs %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestFilterByApp(t *testing.T) {
	b := New(16, 16)
	b.Publish(Event{Type: PlanPublished, App: "a"})
	b.Publish(Event{Type: PlanPublished, App: "b"})
	hist, sub := b.Subscribe(Filter{App: "b"})
	defer sub.Close()
	if len(hist) != 1 || hist[0].App != "b" {
		t.Fatalf("history %+v, want the one event of b", hist)
	}
	b.Publish(Event{Type: InstanceLaunched, App: "a"})
	b.Publish(Event{Type: InstanceLaunched, App: "b"})
	if e := <-sub.C(); e.App != "b" || e.Type != InstanceLaunched {
		t.Fatalf("got %+v, want b's launch", e)
	}
}

// TestSubscribeHistoryThenLive: history and live delivery neither overlap
// nor leave a gap, even with publishers running during Subscribe.
func TestSubscribeHistoryThenLive(t *testing.T) {
	b := New(10000, 10000)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 2000; i++ {
			b.Publish(Event{Type: PlanPublished})
		}
	}()
	hist, sub := b.Subscribe(Filter{})
	wg.Wait()
	b.Publish(Event{Type: ReloadApplied}) // the marker of the end
	sub.Close()
	next := uint64(1)
	for _, e := range hist {
		if e.Seq != next {
			t.Fatalf("history seq %d, want %d", e.Seq, next)
		}
		next++
	}
	for e := range sub.C() {
		if e.Seq != next {
			t.Fatalf("live seq %d, want %d", e.Seq, next)
		}
		next++
	}
	if next != 2002 {
		t.Fatalf("saw %d events, want 2001", next-1)
	}
}

// TestSlowFollowerIsToldAndNeverBlocks: a follower that reads nothing does
// not stall Publish; when it reads again it gets a Lost event with the
// count of what it missed, then the events that fit.
func TestSlowFollowerIsToldAndNeverBlocks(t *testing.T) {
	b := New(4, 4)
	_, sub := b.Subscribe(Filter{})
	defer sub.Close()
	for i := 0; i < 100; i++ { // would deadlock if Publish blocked
		b.Publish(Event{Type: PlanPublished})
	}
	var got []Event
	for len(sub.C()) > 0 {
		got = append(got, <-sub.C())
	}
	if len(got) != 4 || got[0].Seq != 1 || got[3].Seq != 4 {
		t.Fatalf("queued %+v, want the first 4 events", got)
	}
	b.Publish(Event{Type: ReloadApplied})
	lost := <-sub.C()
	if lost.Type != Lost || lost.Count != 96 {
		t.Fatalf("got %+v, want Lost with count 96", lost)
	}
	if e := <-sub.C(); e.Seq != 101 || e.Type != ReloadApplied {
		t.Fatalf("got %+v, want event 101 after the Lost notice", e)
	}
}

func TestNilSinkAndBus(t *testing.T) {
	var s Sink
	s.Emit(Event{Type: PlanPublished}) // no panic
	var b *Bus
	b.Publish(Event{Type: PlanPublished})
}
