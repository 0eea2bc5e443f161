package main

import (
	"reflect"
	"testing"
)

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
	}{
		{"0", []int{0}},
		{"0-1", []int{0, 1}},
		{"0-2,5,7-8", []int{0, 1, 2, 5, 7, 8}},
		{"3-1", nil},
		{"x", nil},
	} {
		if got := parseCPUList(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
		}
	}
	if len(allowedCPUs()) == 0 {
		t.Fatal("no CPU allowed for this process, per /proc/self/status")
	}
}

func TestPlanPinning(t *testing.T) {
	for _, tc := range []struct {
		name           string
		cpus           []int
		taskset        bool
		gen, wl, proxy string
	}{
		{"one cpu", []int{0}, true, "", "", ""},
		{"no taskset", []int{0, 1}, false, "", "", ""},
		{"two cpus: workloads beside wrk", []int{0, 1}, true, "0", "0", "1"},
		{"four cpus: workloads on the rest", []int{2, 3, 4, 5}, true, "2", "4,5", "3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := planPinning(tc.cpus, tc.taskset)
			if p.gen != tc.gen || p.workload != tc.wl || p.proxy != tc.proxy {
				t.Fatalf("got gen %q workload %q proxy %q", p.gen, p.workload, p.proxy)
			}
			if p.note == "" {
				t.Fatal("no note for the table header")
			}
		})
	}
}
