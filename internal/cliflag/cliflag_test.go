package cliflag

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		positional []string
		html       string
	}{
		{[]string{"a", "b", "--html", "r"}, []string{"a", "b"}, "r"},
		{[]string{"--html", "r", "a", "b"}, []string{"a", "b"}, "r"},
		{[]string{"a", "--html", "r", "b"}, []string{"a", "b"}, "r"},
		{[]string{"a", "--", "-n", "--html"}, []string{"a", "-n", "--html"}, ""},
		{[]string{"--", "-x"}, []string{"-x"}, ""},
		{nil, nil, ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		html := fs.String("html", "", "")
		got, err := ParseInterspersed(fs, tc.args)
		if err != nil || !slices.Equal(got, tc.positional) || *html != tc.html {
			t.Errorf("%q: positional %q html %q err %v, want %q %q", tc.args, got, *html, err, tc.positional, tc.html)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := ParseInterspersed(fs, []string{"a", "--unknown"}); err == nil {
		t.Error("an unknown flag must be an error")
	}
}
