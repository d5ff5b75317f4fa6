package main

import (
	"context"
	"io"

	"llamago/verify"
)

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return verify.Main(ctx, args, stdout, stderr)
}
