package main

import (
	"context"
	"io"

	"llamago/probe/diffcli"
)

func runDiff(_ context.Context, args []string, stdout, stderr io.Writer) int {
	return diffcli.Main(args, stdout, stderr)
}
