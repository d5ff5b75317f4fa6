// Command membw measures this machine's memory read bandwidth, the bound
// on single-token decoding, with 1 and more threads: once with a plain
// loop summing uint64 words and once with llamago's own dot-product
// kernels reading the buffer as a weight matrix.
//
// Usage:
//
//	membw [-size 1GiB] [-t 1,2] [-r 5] [-kernels q4_0,q8_0,q4_k,f16]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"llamago/bench/membw"
	"llamago/kernels"
	"llamago/tensor"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("membw", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sizeMiB := fs.Int("size", 1024, "buffer size in `MiB` (make it far larger than the caches)")
	threadList := fs.String("t", "1,2", "comma-separated thread `counts`")
	reps := fs.Int("r", 5, "passes per measurement; the fastest is reported")
	kernelList := fs.String("kernels", "q4_0,q8_0,q4_k,f16", "weight `types` whose dot-product kernel also reads the buffer (empty: none)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	threads, err := parseInts(*threadList)
	if err != nil || *sizeMiB < 1 {
		fmt.Fprintf(stderr, "membw: bad -t %q or -size %d\n", *threadList, *sizeMiB)
		return 2
	}
	var types []tensor.Type
	for _, s := range strings.Split(*kernelList, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		t, err := tensor.ParseType(s)
		if err != nil {
			fmt.Fprintf(stderr, "membw: %v\n", err)
			return 2
		}
		types = append(types, t)
	}
	buf, err := membw.NewBuffer(int64(*sizeMiB) << 20)
	if err != nil {
		fmt.Fprintf(stderr, "membw: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "buffer %d MiB, best of %d passes, kernels %s\n\n", *sizeMiB, *reps, kernels.Selected().Name())
	fmt.Fprintln(stdout, "| reader | threads | GB/s |")
	fmt.Fprintln(stdout, "| --- | ---: | ---: |")
	for _, t := range threads {
		r, err := membw.Best(ctx, *reps, func() (membw.Result, error) { return buf.Sum(t) })
		if err != nil {
			fmt.Fprintf(stderr, "membw: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "| sum uint64 | %d | %.1f |\n", t, r.GBPerSecond())
		for _, typ := range types {
			r, err := membw.Best(ctx, *reps, func() (membw.Result, error) { return buf.Kernel(typ, t) })
			if err != nil {
				fmt.Fprintf(stderr, "membw: %v\n", err)
				return 1
			}
			fmt.Fprintf(stdout, "| %s dot kernel | %d | %.1f |\n", typ, t, r.GBPerSecond())
		}
	}
	return 0
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive count", f)
		}
		out = append(out, n)
	}
	return out, nil
}
