package trace

import (
	"fmt"
	"strings"

	"llamago/probe"
)

// ProbeNames returns every probe name a model of nLayer layers emits, in
// forward order.
func ProbeNames(nLayer int) []string {
	names := []string{probe.Embd}
	for l := 0; l < nLayer; l++ {
		for _, kind := range probe.LayerKinds() {
			names = append(names, probe.LayerName(l, kind))
		}
	}
	return append(names, probe.OutputNorm, probe.Logits)
}

// checkSelection builds the filter of a trace and refuses a selection that
// would record nothing or less than asked: each glob must match a probe of
// the model (a typo would otherwise silently drop part of a trace), and
// some selected position must be among the nPos evaluated.
func checkSelection(globs, positions string, nLayer, nPos int) (probe.Filter, error) {
	filter, err := probe.ParseFilter(globs, positions)
	if err != nil {
		return probe.Filter{}, &usageError{fmt.Errorf("trace: %w", err)}
	}
	names := ProbeNames(nLayer)
	for _, g := range strings.Split(globs, ",") {
		if g = strings.TrimSpace(g); g == "" {
			continue
		}
		one, err := probe.ParseFilter(g, "")
		if err != nil {
			return probe.Filter{}, &usageError{fmt.Errorf("trace: %w", err)}
		}
		matched := false
		for _, n := range names {
			if one.MatchName(n) {
				matched = true
				break
			}
		}
		if !matched {
			return probe.Filter{}, usageErrorf("trace: --probe %q matches no probe of this %d-layer model; probes are %s, blk.{0..%d}.{%s}, %s and %s (globs: * matches dots too)",
				g, nLayer, probe.Embd, nLayer-1, strings.Join(probe.LayerKinds(), ","), probe.OutputNorm, probe.Logits)
		}
	}
	for p := 0; p < nPos; p++ {
		if filter.MatchPos(p) {
			return filter, nil
		}
	}
	return probe.Filter{}, usageErrorf("trace: --pos %q selects none of the %d evaluated positions (0-%d)", positions, nPos, nPos-1)
}

// usageError marks an error in what the user asked for, as opposed to one
// met while running: Main exits with ExitUsage for it.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error {
	return &usageError{fmt.Errorf(format, a...)}
}
