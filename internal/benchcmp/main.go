// Command benchcmp reads `go test -bench` output on stdin and prints, per
// benchmark family, the median of each figure over the -count runs, side by
// side for the implementations compared, with sshtap/<other> ratios.
//
// A benchmark named Family/impl/variant, where impl is sshtap, xcrypto or
// openssh (optionally with a "-suffix", e.g. sshtap-netpipe, xcrypto-none),
// is a comparison: one row per variant, one column group per impl. Ratios
// are against the plain "sshtap" impl: for families reporting MB/s the ratio
// is MB/s(sshtap)/MB/s(other), higher is better for sshtap; otherwise it is
// ns/op(sshtap)/ns/op(other), lower is better for sshtap. Other benchmarks
// (e.g. the cipher package's) are listed as they are.
//
// Sub-benchmarks run again under the same name (Family/impl/variant#01,
// as a benchmark interleaving its own repetitions gets) are samples of
// Family/impl/variant, like those of -count.
//
// Other metrics a benchmark reports with b.ReportMetric (e.g. cs/GiB,
// cpu-s/GiB) follow a comparison family's table, one row per variant and
// metric, with the sshtap/other ratio of the medians.
//
// Usage: go test -bench . -benchmem -count 3 | go run ./internal/benchcmp
// (internal/benchcmp/run.sh does this for the comparison benchmarks).
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// sample is one result line.
type sample struct {
	name    string // without the -GOMAXPROCS suffix
	metrics map[string]float64
}

// procSuffix is the -GOMAXPROCS suffix, after the #NN that the testing
// package appends to a sub-benchmark run again under the same name (a
// benchmark that interleaves its own repetitions): both are dropped, so
// repetitions count as samples of one benchmark.
var procSuffix = regexp.MustCompile(`(#\d+)?-\d+$`)

// parse reads benchmark result lines, ignoring everything else.
func parse(r io.Reader) ([]sample, error) {
	var out []sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		s := sample{name: procSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), ""), metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			s.metrics[f[i+1]] = v
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread is (max-min)/median in percent.
func spread(v []float64) float64 {
	m := median(v)
	if len(v) < 2 || m == 0 {
		return 0
	}
	return (slices.Max(v) - slices.Min(v)) / m * 100
}

// impl returns the implementation a path element names, or "".
func impl(s string) string {
	for _, p := range []string{"sshtap", "xcrypto", "openssh"} {
		if s == p || strings.HasPrefix(s, p+"-") {
			return s
		}
	}
	return ""
}

// cell is the samples of one (family, variant, impl).
type cell struct{ metrics map[string][]float64 }

type family struct {
	name     string
	impls    []string // in order of appearance
	variants []string
	cells    map[[2]string]*cell // {variant, impl}
	plain    bool                // no impl: list as is
}

func group(samples []sample) []*family {
	var fams []*family
	byName := map[string]*family{}
	for _, s := range samples {
		parts := strings.Split(s.name, "/")
		fname, im, variant := parts[0], "", strings.Join(parts[1:], "/")
		if len(parts) >= 2 && impl(parts[1]) != "" {
			im, variant = parts[1], strings.Join(parts[2:], "/")
		} else if len(parts) >= 3 && impl(parts[2]) != "" {
			// Family/mode/impl/variant, e.g. Transfer/upload/sshtap/aes128-gcm:
			// one family per mode.
			fname, im, variant = parts[0]+"/"+parts[1], parts[2], strings.Join(parts[3:], "/")
		}
		f := byName[fname]
		if f == nil {
			f = &family{name: fname, cells: map[[2]string]*cell{}, plain: im == ""}
			byName[fname] = f
			fams = append(fams, f)
		}
		if im != "" && !slices.Contains(f.impls, im) {
			f.impls = append(f.impls, im)
		}
		if !slices.Contains(f.variants, variant) {
			f.variants = append(f.variants, variant)
		}
		k := [2]string{variant, im}
		c := f.cells[k]
		if c == nil {
			c = &cell{metrics: map[string][]float64{}}
			f.cells[k] = c
		}
		for u, v := range s.metrics {
			c.metrics[u] = append(c.metrics[u], v)
		}
	}
	return fams
}

func (f *family) has(unit string) bool {
	for _, c := range f.cells {
		if len(c.metrics[unit]) > 0 {
			return true
		}
	}
	return false
}

func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// fmtSig formats v with three significant digits (integers from 1000 up).
func fmtSig(v float64) string {
	if v >= 1000 || v <= -1000 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func fmtTime(ns float64) string {
	switch {
	case ns >= 1e6:
		return strconv.FormatFloat(ns/1e6, 'f', 2, 64) + "ms"
	case ns >= 1e3:
		return strconv.FormatFloat(ns/1e3, 'f', 1, 64) + "µs"
	}
	return strconv.FormatFloat(ns, 'f', 0, 64) + "ns"
}

func write(w io.Writer, fams []*family) {
	for _, f := range fams {
		fmt.Fprintf(w, "\n== %s\n", f.name)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		speed := f.has("MB/s")
		main, unit := "ns/op", "time"
		if speed {
			main, unit = "MB/s", "MB/s"
		}
		// Families reporting allocations per MiB moved show those instead
		// of allocs/op.
		allocs := "allocs/op"
		if f.has("allocs/MiB") {
			allocs = "allocs/MiB"
		}
		val := func(c *cell, u string) (float64, bool) {
			if c == nil || len(c.metrics[u]) == 0 {
				return 0, false
			}
			return median(c.metrics[u]), true
		}
		show := func(c *cell, u string) string {
			v, ok := val(c, u)
			if !ok {
				return "-"
			}
			switch u {
			case "ns/op":
				return fmtTime(v)
			case "allocs/op", "B/op":
				return strconv.FormatFloat(v, 'f', 0, 64)
			}
			return fmtNum(v)
		}
		if f.plain {
			fmt.Fprintf(tw, "benchmark\t%s\t±%%\t%s\tB/op\tn\t\n", unit, allocs)
			for _, v := range f.variants {
				c := f.cells[[2]string{v, ""}]
				fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%d\t\n", v, show(c, main), spread(c.metrics[main]), show(c, allocs), show(c, "B/op"), len(c.metrics[main]))
			}
			tw.Flush()
			continue
		}
		hdr := []string{"variant"}
		for _, im := range f.impls {
			hdr = append(hdr, im+" "+unit, "±%", allocs)
		}
		base := slices.Contains(f.impls, "sshtap")
		if base {
			for _, im := range f.impls {
				if im != "sshtap" {
					hdr = append(hdr, "sshtap/"+im)
				}
			}
		}
		fmt.Fprintln(tw, strings.Join(hdr, "\t")+"\t")
		for _, v := range f.variants {
			row := []string{v}
			if v == "" {
				row[0] = "-"
			}
			for _, im := range f.impls {
				c := f.cells[[2]string{v, im}]
				sp := "-"
				if c != nil && len(c.metrics[main]) > 1 {
					sp = fmt.Sprintf("%.0f", spread(c.metrics[main]))
				}
				row = append(row, show(c, main), sp, show(c, allocs))
			}
			if base {
				s, sok := val(f.cells[[2]string{v, "sshtap"}], main)
				for _, im := range f.impls {
					if im == "sshtap" {
						continue
					}
					o, ook := val(f.cells[[2]string{v, im}], main)
					if sok && ook && o != 0 {
						row = append(row, fmt.Sprintf("%.2f", s/o))
					} else {
						row = append(row, "-")
					}
				}
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
		if base {
			if speed {
				fmt.Fprintln(w, "(ratio: MB/s of sshtap / MB/s of the other; > 1 means sshtap is faster)")
			} else {
				fmt.Fprintln(w, "(ratio: ns/op of sshtap / ns/op of the other; < 1 means sshtap is faster)")
			}
		}
		writeExtra(w, f, base)
	}
}

// standardUnits are the units the main table shows (or leaves out).
var standardUnits = []string{"ns/op", "MB/s", "B/op", "allocs/op", "allocs/MiB"}

// writeExtra prints a comparison family's other metrics (b.ReportMetric
// units such as cs/GiB), one row per variant and unit, with the
// sshtap/other ratio of the medians.
func writeExtra(w io.Writer, f *family, base bool) {
	var units []string
	for _, c := range f.cells {
		for u := range c.metrics {
			if !slices.Contains(standardUnits, u) && !slices.Contains(units, u) {
				units = append(units, u)
			}
		}
	}
	if len(units) == 0 {
		return
	}
	slices.Sort(units)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	hdr := []string{"variant", "metric"}
	for _, im := range f.impls {
		hdr = append(hdr, im, "±%")
	}
	if base {
		for _, im := range f.impls {
			if im != "sshtap" {
				hdr = append(hdr, "sshtap/"+im)
			}
		}
	}
	fmt.Fprintln(tw, strings.Join(hdr, "\t")+"\t")
	for _, v := range f.variants {
		for _, u := range units {
			row := []string{v, u}
			if v == "" {
				row[0] = "-"
			}
			for _, im := range f.impls {
				c := f.cells[[2]string{v, im}]
				if c == nil || len(c.metrics[u]) == 0 {
					row = append(row, "-", "-")
					continue
				}
				sp := "-"
				if len(c.metrics[u]) > 1 {
					sp = fmt.Sprintf("%.0f", spread(c.metrics[u]))
				}
				row = append(row, fmtSig(median(c.metrics[u])), sp)
			}
			if base {
				sc := f.cells[[2]string{v, "sshtap"}]
				for _, im := range f.impls {
					if im == "sshtap" {
						continue
					}
					oc := f.cells[[2]string{v, im}]
					if sc != nil && oc != nil && len(sc.metrics[u]) > 0 && len(oc.metrics[u]) > 0 && median(oc.metrics[u]) != 0 {
						row = append(row, fmt.Sprintf("%.2f", median(sc.metrics[u])/median(oc.metrics[u])))
					} else {
						row = append(row, "-")
					}
				}
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
	}
	tw.Flush()
	if base {
		fmt.Fprintln(w, "(ratio: median of sshtap / median of the other)")
	}
}

func main() {
	samples, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcmp:", err)
		os.Exit(1)
	}
	if len(samples) == 0 {
		fmt.Fprintln(os.Stderr, "benchcmp: no benchmark results on stdin")
		os.Exit(1)
	}
	write(os.Stdout, group(samples))
}
