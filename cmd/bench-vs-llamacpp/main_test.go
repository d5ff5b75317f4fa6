package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"llamago/internal/testenv"
)

// TestSmallSideBySide runs the whole comparison on the small synthetic
// shape with one type and a few tokens: both engines must produce
// positive speeds in a well-formed table.
func TestSmallSideBySide(t *testing.T) {
	if testing.Short() {
		t.Skip("loads llama.cpp and makes a synthetic model")
	}
	testenv.RequireLlamaCpp(t)
	vocab := testenv.Path(t, testenv.LlamaSPMVocab)
	var out, errOut bytes.Buffer
	args := []string{"--shape", "small", "--types", "q8_0", "-p", "8", "-n", "4", "-r", "2", "-t", "1", "--bandwidth", "10", "--vocab", vocab}
	if code := run(context.Background(), args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, errOut.String())
	}
	var row []string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "| Q8_0 |") {
			row = strings.Split(strings.Trim(line, "| "), " | ")
		}
	}
	if len(row) != 11 {
		t.Fatalf("no Q8_0 row of 11 cells in:\n%s", out.String())
	}
	// Cells 1, 2, 4, 5 are "mean ± stddev"; 3 and 6 are ratios.
	for _, i := range []int{1, 2, 4, 5} {
		mean, err := strconv.ParseFloat(strings.Fields(row[i])[0], 64)
		if err != nil || !(mean > 0) {
			t.Errorf("cell %d = %q: want a positive speed", i, row[i])
		}
	}
	for _, i := range []int{3, 6} {
		if r, err := strconv.ParseFloat(row[i], 64); err != nil || !(r > 0) {
			t.Errorf("ratio cell %d = %q", i, row[i])
		}
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-p", "0"}, {"-r", "0"}, {"-t", "0"}, {"--shape", "huge"}, {"extra"}, {"-n", "x"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
