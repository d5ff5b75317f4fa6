// Package cliflag holds what llamago's commands share about parsing flags.
package cliflag

import "flag"

// ParseInterspersed parses flags wherever they appear among the positional
// arguments ("A B --html r.html" as well as "--html r.html A B"), as users
// of llama.cpp's tools expect; the standard flag package stops at the first
// positional argument. After "--" everything is positional, so a positional
// argument may start with a dash. It returns the positional arguments.
func ParseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		// fs.Parse consumed a "--" if it stopped there: everything after
		// it is positional.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
