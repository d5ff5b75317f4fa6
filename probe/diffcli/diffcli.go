// Package diffcli is the "llamago diff" command: it compares two probe
// dumps, prints the report and exits 0 when every probe agrees, 1 when
// some probe diverges and 2 on any error (bad arguments, unreadable or
// corrupt dumps, shapes that differ, no probe in common, a refused
// comparison).
package diffcli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"llamago/internal/cliflag"
	"llamago/probe"
)

// Exit statuses of Main.
const (
	ExitAgree   = 0
	ExitDiverge = 1
	ExitError   = 2
)

const usage = `usage: llamago diff A.safetensors B.safetensors [flags]

Compares two probe dumps tensor by tensor, B being the reference, and names
the first probe, in A's forward order, whose relative error ‖a−b‖/‖b‖
reaches the warn threshold. Flags may come before or after the dumps.

Exit status: 0 all probes agree (warnings allowed), 1 a probe diverges,
2 error.

flags:
`

// Main runs the command with args (without the program and command names)
// and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("llamago diff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	htmlPath := fs.String("html", "", "also write an HTML report with a chart to `FILE`")
	agree := fs.Float64("agree", probe.DefaultAgree, "relative error below which a probe agrees")
	warn := fs.Float64("warn", probe.DefaultWarn, "relative error below which a probe only warns; at or above it diverges")
	force := fs.Bool("force", false, "compare even when the token ids or model digests differ")
	globs := fs.String("probe", "", "compare only probes matching `GLOBS` (comma-separated; * matches dots too)")
	positions := fs.String("pos", "", "compare only these `POSITIONS` (3, 0-7, 3,5)")
	all := fs.Bool("all", false, "print every row, not only those that do not agree")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}

	files, err := cliflag.ParseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return ExitAgree
	}
	if err != nil {
		return ExitError // flag has printed the problem and the usage
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "llamago diff: "+format+"\n", a...)
		return ExitError
	}
	if len(files) != 2 {
		fs.Usage()
		return fail("want two dumps, got %d arguments", len(files))
	}
	if !(*agree > 0) || !(*warn >= *agree) {
		return fail("want 0 < --agree <= --warn, got %g and %g", *agree, *warn)
	}
	filter, err := probe.ParseFilter(*globs, *positions)
	if err != nil {
		return fail("%v", err)
	}

	var dumps [2]*probe.DumpFile
	for i, path := range files {
		if dumps[i], err = probe.ReadDump(path); err != nil {
			return fail("%v", err)
		}
	}
	report, err := probe.Diff(dumps[0], dumps[1], probe.DiffOptions{
		Agree: *agree, Warn: *warn, Force: *force, Probes: filter,
	})
	if errors.Is(err, probe.ErrDifferentRuns) {
		return fail("%v (pass --force to compare anyway)", err)
	}
	if err != nil {
		return fail("%v", err)
	}

	write := report.WriteSummary
	if *all {
		write = report.WriteText
	}
	if err := write(stdout); err != nil {
		return fail("%v", err)
	}
	if *htmlPath != "" {
		if err := writeHTML(report, *htmlPath); err != nil {
			return fail("%v", err)
		}
	}
	if report.Diverged() {
		return ExitDiverge
	}
	return ExitAgree
}

func writeHTML(report *probe.Report, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing HTML report: %w", err)
	}
	if err := report.WriteHTML(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing HTML report: %w", err)
	}
	return nil
}
