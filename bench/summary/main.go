// Command summary reads `go test -bench` output on stdin and prints, per
// package and benchmark, the median of every metric over the runs, followed by
// the ratios the project tracks against their baselines measured in the same
// run.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// sample is one metric of one benchmark across runs.
type key struct{ pkg, bench, unit string }

// ratios lists (numerator, baseline, metric) pairs reported when both exist.
var ratios = []struct {
	label, num, base, unit string
	higherIsBetter         bool
}{
	{"Pack throughput / sha256sum", "BenchmarkPack", "BenchmarkSHA256Sum", "MB/s", true},
	{"Verify throughput / sha256sum", "BenchmarkVerify", "BenchmarkSHA256Sum", "MB/s", true},
	{"stream message / unary plugin call", "BenchmarkStreamMessage", "BenchmarkUnaryCall", "ns/op", false},
	{"local pick / unary plugin call", "BenchmarkLocalPick", "BenchmarkUnaryCall", "ns/op", false},
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "summary:", err)
		os.Exit(1)
	}
}

func run(r io.Reader, w io.Writer) error {
	vals := map[key][]float64{}
	var order []key
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "pkg: ") {
			pkg = strings.TrimPrefix(line, "pkg: ")
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			k := key{pkg, name, f[i+1]}
			if _, seen := vals[k]; !seen {
				order = append(order, k)
			}
			vals[k] = append(vals[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read benchmark output: %w", err)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "package\tbenchmark\tmetric\tmedian\truns\t")
	for _, k := range order {
		v := vals[k]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t\n", shortPkg(k.pkg), k.bench, k.unit, format(median(v)), len(v))
	}
	tw.Flush()

	fmt.Fprintln(w)
	fmt.Fprintln(w, "ratios (medians, same run):")
	find := func(bench, unit string) (float64, bool) {
		for _, k := range order {
			if (k.bench == bench || strings.HasPrefix(k.bench, bench+"/")) && k.unit == unit {
				return median(vals[k]), true
			}
		}
		return 0, false
	}
	for _, r := range ratios {
		n, ok1 := find(r.num, r.unit)
		b, ok2 := find(r.base, r.unit)
		if !ok1 || !ok2 || b == 0 {
			continue
		}
		fmt.Fprintf(w, "  %-40s %10sx\n", r.label, strconv.FormatFloat(n/b, 'g', 3, 64))
	}
	return nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func format(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func shortPkg(p string) string {
	return strings.TrimPrefix(p, "github.com/mycelium-mesh/mesh/")
}
