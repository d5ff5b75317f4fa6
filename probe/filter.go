package probe

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Filter selects probes by name and token position. The zero Filter
// selects everything.
//
// Name patterns use path.Match syntax: '*' matches any run of characters
// (dots included, since probe names have no '/'), '?' one character,
// '[...]' a class. A pattern must match the whole name: "blk.0.*" selects
// every probe of layer 0, "*.q_rope" the roped queries of every layer,
// "blk.1?.ffn_*" the FFN probes of layers 10-19.
type Filter struct {
	globs     []string
	positions []posRange
}

// posRange is an inclusive range of positions.
type posRange struct{ lo, hi int }

// ParseFilter builds a Filter from a comma-separated list of name patterns
// and a comma-separated list of positions and inclusive ranges
// ("3", "0-7", "3,5", "0-3,8"). An empty string selects all.
func ParseFilter(globs, positions string) (Filter, error) {
	var f Filter
	for _, g := range splitList(globs) {
		// path.Match checks the whole pattern whatever the name, so a
		// bad pattern is caught here once rather than ignored per call.
		if _, err := path.Match(g, ""); err != nil {
			return Filter{}, fmt.Errorf("probe: bad name pattern %q: %w", g, err)
		}
		f.globs = append(f.globs, g)
	}
	for _, p := range splitList(positions) {
		r, err := parsePosRange(p)
		if err != nil {
			return Filter{}, err
		}
		f.positions = append(f.positions, r)
	}
	return f, nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func parsePosRange(s string) (posRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := parsePos(lo)
	if err != nil {
		return posRange{}, fmt.Errorf("probe: bad position %q: %w", s, err)
	}
	if !isRange {
		return posRange{a, a}, nil
	}
	b, err := parsePos(hi)
	if err != nil {
		return posRange{}, fmt.Errorf("probe: bad position range %q: %w", s, err)
	}
	if b < a {
		return posRange{}, fmt.Errorf("probe: bad position range %q: end before start", s)
	}
	return posRange{a, b}, nil
}

func parsePos(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("not a non-negative integer")
		}
	}
	return strconv.Atoi(s)
}

// MatchName reports whether the filter selects the probe name.
func (f Filter) MatchName(name string) bool {
	if len(f.globs) == 0 {
		return true
	}
	for _, g := range f.globs {
		// Patterns were checked in ParseFilter, so an error cannot occur.
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// MatchPos reports whether the filter selects the token position.
func (f Filter) MatchPos(pos int) bool {
	if len(f.positions) == 0 {
		return true
	}
	for _, r := range f.positions {
		if pos >= r.lo && pos <= r.hi {
			return true
		}
	}
	return false
}

// Match reports whether the filter selects the probe at the position.
func (f Filter) Match(name string, pos int) bool {
	return f.MatchPos(pos) && f.MatchName(name)
}

// IsAll reports whether the filter selects everything.
func (f Filter) IsAll() bool { return len(f.globs) == 0 && len(f.positions) == 0 }

// Globs returns the name patterns as ParseFilter reads them ("" for all).
func (f Filter) Globs() string { return strings.Join(f.globs, ",") }

// Positions returns the positions as ParseFilter reads them ("" for all).
func (f Filter) Positions() string {
	ps := make([]string, len(f.positions))
	for i, r := range f.positions {
		if r.lo == r.hi {
			ps[i] = strconv.Itoa(r.lo)
		} else {
			ps[i] = strconv.Itoa(r.lo) + "-" + strconv.Itoa(r.hi)
		}
	}
	return strings.Join(ps, ",")
}

// String describes the filter for people: "names=GLOBS pos=POSITIONS", or
// "all" when it selects everything.
func (f Filter) String() string {
	if f.IsAll() {
		return "all"
	}
	var parts []string
	if len(f.globs) > 0 {
		parts = append(parts, "names="+f.Globs())
	}
	if len(f.positions) > 0 {
		parts = append(parts, "pos="+f.Positions())
	}
	return strings.Join(parts, " ")
}
