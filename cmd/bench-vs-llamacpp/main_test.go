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
// positive speeds in a well-formed table, followed by the table of
// per-repetition ratios; with -p 0 only decoding is measured.
func TestSmallSideBySide(t *testing.T) {
	if testing.Short() {
		t.Skip("loads llama.cpp and makes a synthetic model")
	}
	testenv.RequireLlamaCpp(t)
	vocab := testenv.Path(t, testenv.LlamaSPMVocab)
	for _, tc := range []struct {
		name   string
		prompt string
		pp     bool // the pp cells hold speeds, not "-"
	}{{"pp and tg", "8", true}, {"tg only", "0", false}} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := []string{"--shape", "small", "--types", "q8_0", "-p", tc.prompt, "-n", "4", "-r", "2", "-t", "1", "--bandwidth", "10", "--vocab", vocab}
			if code := run(context.Background(), args, &out, &errOut); code != 0 {
				t.Fatalf("exit %d\nstderr:\n%s", code, errOut.String())
			}
			var rows [][]string
			for _, line := range strings.Split(out.String(), "\n") {
				if strings.HasPrefix(line, "| Q8_0 |") {
					rows = append(rows, strings.Split(strings.Trim(line, "| "), " | "))
				}
			}
			if len(rows) != 2 || len(rows[0]) != 11 || len(rows[1]) != 4 {
				t.Fatalf("want a Q8_0 row of 11 cells, then one of 4, in:\n%s", out.String())
			}
			row, spread := rows[0], rows[1]
			// Cells 1, 2, 4, 5 are "mean ± stddev"; 3 and 6 are ratios.
			cells := []int{4, 5, 6}
			if tc.pp {
				cells = append(cells, 1, 2, 3)
			} else if row[1] != "-" || row[2] != "-" || row[3] != "-" {
				t.Errorf("skipped pp test: cells %q, want \"-\"", row[1:4])
			}
			for _, i := range cells {
				if v, err := strconv.ParseFloat(strings.Fields(row[i])[0], 64); err != nil || !(v > 0) {
					t.Errorf("cell %d = %q: want a positive number", i, row[i])
				}
			}
			// The spread table: "median (min–max)" per test, then the
			// number of pairs, which is -r.
			if med, err := strconv.ParseFloat(strings.Fields(spread[2])[0], 64); err != nil || !(med > 0) {
				t.Errorf("tg spread %q: want a positive median", spread[2])
			}
			if (spread[1] == "-") == tc.pp || spread[3] != "2" {
				t.Errorf("spread row %q", spread)
			}
		})
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-p", "0", "-n", "0"}, {"-p", "-1"}, {"-r", "0"}, {"-t", "0"}, {"--shape", "huge"}, {"extra"}, {"-n", "x"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
