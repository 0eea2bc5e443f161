package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const wrkKeepAlive = `Running 1s test @ http://127.0.0.1:18999/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   295.11us  773.62us   8.06ms   90.28%
    Req/Sec   102.75k     7.31k  110.56k    72.73%
  Latency Distribution
     50%   31.00us
     75%   47.00us
     90%    1.01ms
     99%    3.73ms
  111895 requests in 1.10s, 12.59MB read
Requests/sec: 101712.46
Transfer/sec:     11.45MB
`

const wrkErrors = `Running 2s test @ http://127.0.0.1:8080/billing/hello
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20ms    2.01ms  40.00ms   95.00%
    Req/Sec     9.12k   500.00     10.00k    70.00%
  Latency Distribution
     50%    0.98ms
     75%    1.14ms
     90%    1.33ms
     99%    1.02s
  18240 requests in 2.00s, 2.10MB read
  Socket errors: connect 3, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 12
Requests/sec:   9120.00
Transfer/sec:      1.05MB
`

func TestParseWrk(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      wrkResult
		err       string
	}{
		{"keep-alive", wrkKeepAlive, wrkResult{requests: 111895, rps: 101712.46, p50: 31 * time.Microsecond, p99: 3730 * time.Microsecond}, ""},
		{"errors counted", wrkErrors, wrkResult{requests: 18240, rps: 9120, p50: 980 * time.Microsecond, p99: 1020 * time.Millisecond, errors: 18}, ""},
		{"no latency table", strings.Replace(wrkKeepAlive, "  Latency Distribution\n", "", 1), wrkResult{}, "incomplete"},
		{"connection refused", "unable to connect to 127.0.0.1:1 Connection refused\n", wrkResult{}, "incomplete"},
		{"bad duration", strings.Replace(wrkKeepAlive, "3.73ms", "3.73xs", 1), wrkResult{}, `duration "3.73xs"`},
		{"unknown unit", strings.Replace(wrkKeepAlive, "3.73ms", "3.73d", 1), wrkResult{}, "unknown unit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWrk(tc.out)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseWrkDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"912.00us", 912 * time.Microsecond},
		{"1.03ms", 1030 * time.Microsecond},
		{"2.10s", 2100 * time.Millisecond},
		{"1.50m", 90 * time.Second},
	} {
		got, err := parseWrkDuration(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestWrkArgs(t *testing.T) {
	w := wrkRun{bin: "/usr/bin/wrk", pin: "0", connections: 16, duration: 2500 * time.Millisecond,
		headers: []string{"Connection: close"}, url: "http://127.0.0.1:1/hello"}
	want := []string{"taskset", "-c", "0", "/usr/bin/wrk", "-t", "1", "-c", "16", "-d", "3s", "--latency",
		"-H", "Connection: close", "http://127.0.0.1:1/hello"}
	if got := w.args(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	w.pin, w.headers = "", nil
	if got := w.args(); got[0] != "/usr/bin/wrk" {
		t.Fatalf("unpinned run starts with %q", got[0])
	}
}
