package main

import (
	"context"
	"io"

	"llamago/trace"
)

func runTrace(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return trace.Main(ctx, args, stdout, stderr)
}
