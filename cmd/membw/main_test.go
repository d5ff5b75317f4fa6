package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunSmall(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-size", "2", "-r", "1", "-t", "1,2", "-kernels", "q8_0,f16"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"| sum uint64 | 1 |", "| sum uint64 | 2 |", "| Q8_0 dot kernel | 2 |", "| F16 dot kernel | 1 |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunBadArguments(t *testing.T) {
	for _, args := range [][]string{{"-t", "0"}, {"-t", "x"}, {"-size", "0"}, {"-kernels", "nosuchtype"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
