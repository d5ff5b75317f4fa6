package main

import (
	"context"
	"fmt"
	"io"

	"llamago/inspect"
	"llamago/internal/cliflag"
)

func runInspect(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("inspect", "FILE [--json]", stderr)
	asJSON := fs.Bool("json", false, "print one JSON object")
	rest, err := cliflag.ParseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(rest) != 1 {
		fs.Usage()
		return 2
	}
	if err := inspect.Run(stdout, rest[0], inspect.Options{JSON: *asJSON}); err != nil {
		fmt.Fprintf(stderr, "llamago inspect: %v\n", err)
		return 1
	}
	return 0
}
