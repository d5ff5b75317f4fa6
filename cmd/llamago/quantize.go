package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"llamago/engine"
	"llamago/internal/cliflag"
	"llamago/quantize"
)

func runQuantize(_ context.Context, args []string, stdout, stderr io.Writer) int {
	var names []string
	for _, t := range quantize.Targets() {
		names = append(names, t.Name())
	}
	fs := newFlagSet("quantize", "IN OUT TYPE [-t THREADS] [--allow-requantize]\n\nTYPE is one of: "+strings.Join(names, ", "), stderr)
	threads := fs.Int("t", 0, "threads (0: the number of physical cores)")
	requant := fs.Bool("allow-requantize", false, "accept an input that is already quantized")
	verbose := fs.Bool("v", false, "print each tensor's conversion")
	rest, err := cliflag.ParseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(rest) != 3 {
		fs.Usage()
		return 2
	}
	target, err := quantize.ParseTarget(rest[2])
	if err != nil {
		fmt.Fprintf(stderr, "llamago quantize: %v\n", err)
		return 2
	}
	if *threads < 1 {
		*threads = engine.DefaultThreads()
	}
	opts := quantize.Options{Threads: *threads, AllowRequantize: *requant}
	if *verbose {
		opts.Progress = func(i, n int, p quantize.TensorPlan) {
			fmt.Fprintf(stderr, "[%d/%d] %-32s %-5s -> %-5s %v\n", i+1, n, p.Name, p.From, p.To, p.Shape)
		}
	}
	if err := quantize.Run(rest[0], rest[1], target, opts); err != nil {
		fmt.Fprintf(stderr, "llamago quantize: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s (%s)\n", rest[1], target)
	return 0
}
