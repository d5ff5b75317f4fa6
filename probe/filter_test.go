package probe

import "testing"

func TestFilterMatch(t *testing.T) {
	type probe struct {
		name string
		pos  int
		want bool
	}
	for _, tc := range []struct {
		globs, positions string
		cases            []probe
	}{
		{"", "", []probe{{"embd", 0, true}, {"blk.31.out", 4095, true}}},
		{"blk.0.*", "", []probe{{"blk.0.q", 3, true}, {"blk.0.attn_scores", 0, true}, {"blk.1.q", 0, false}, {"blk.10.q", 0, false}, {"embd", 0, false}}},
		{"*.q_rope", "", []probe{{"blk.0.q_rope", 0, true}, {"blk.21.q_rope", 9, true}, {"blk.0.q", 0, false}, {"blk.0.k_rope", 0, false}}},
		{"blk.*", "", []probe{{"blk.3.ffn_up", 0, true}, {"logits", 0, false}}},
		{"embd, logits", "", []probe{{"embd", 0, true}, {"logits", 5, true}, {"output_norm", 0, false}}},
		{"blk.1?.ffn_*", "", []probe{{"blk.12.ffn_up", 0, true}, {"blk.1.ffn_up", 0, false}, {"blk.12.ffn", 0, false}}},
		{"blk.[01].q", "", []probe{{"blk.0.q", 0, true}, {"blk.1.q", 0, true}, {"blk.2.q", 0, false}}},
		{"q", "", []probe{{"blk.0.q", 0, false}}}, // whole-name match
		{"", "3", []probe{{"embd", 3, true}, {"embd", 2, false}, {"embd", 4, false}}},
		{"", "0-7", []probe{{"embd", 0, true}, {"embd", 7, true}, {"embd", 8, false}, {"embd", -1, false}}},
		{"", "3,5", []probe{{"embd", 3, true}, {"embd", 4, false}, {"embd", 5, true}}},
		{"", " 0-1 , 9 ", []probe{{"embd", 1, true}, {"embd", 9, true}, {"embd", 5, false}}},
		{"blk.0.*", "2", []probe{{"blk.0.q", 2, true}, {"blk.0.q", 1, false}, {"blk.1.q", 2, false}}},
	} {
		f, err := ParseFilter(tc.globs, tc.positions)
		if err != nil {
			t.Fatalf("ParseFilter(%q, %q): %v", tc.globs, tc.positions, err)
		}
		for _, c := range tc.cases {
			if got := f.Match(c.name, c.pos); got != c.want {
				t.Errorf("filter (%q, %q).Match(%q, %d) = %v, want %v", tc.globs, tc.positions, c.name, c.pos, got, c.want)
			}
		}
	}
}

func TestParseFilterErrors(t *testing.T) {
	for _, tc := range []struct{ globs, positions string }{
		{"blk.[0", ""},
		{"blk.\\", ""},
		{"", "x"},
		{"", "-3"},
		{"", "3-"},
		{"", "5-2"},
		{"", "1-2-3"},
		{"", "+4"},
		{"", "1.5"},
		{"", "99999999999999999999999"},
	} {
		if f, err := ParseFilter(tc.globs, tc.positions); err == nil {
			t.Errorf("ParseFilter(%q, %q) = %v, want an error", tc.globs, tc.positions, f)
		}
	}
}

func TestFilterString(t *testing.T) {
	f, err := ParseFilter("blk.0.*,*.q", "0-3,7")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.String(), "names=blk.0.*,*.q pos=0-3,7"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if f.Globs() != "blk.0.*,*.q" || f.Positions() != "0-3,7" {
		t.Errorf("Globs, Positions = %q, %q", f.Globs(), f.Positions())
	}
	if got := (Filter{}).String(); got != "all" {
		t.Errorf("zero Filter String() = %q", got)
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, seed := range [][2]string{{"blk.0.*", "0-7"}, {"*.q_rope,embd", "3,5"}, {"[", "x"}, {"", ""}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, globs, positions string) {
		flt, err := ParseFilter(globs, positions)
		if err != nil {
			return
		}
		// Globs and Positions give back what ParseFilter reads to the same
		// filter.
		again, err := ParseFilter(flt.Globs(), flt.Positions())
		if err != nil || again.String() != flt.String() {
			t.Fatalf("%q, %q -> %q -> %q, %v", globs, positions, flt.String(), again.String(), err)
		}
		for _, name := range []string{"embd", "blk.0.q", "blk.12.ffn_up", globs} {
			for _, pos := range []int{0, 3, 7, 100} {
				if flt.Match(name, pos) != again.Match(name, pos) {
					t.Fatalf("filters differ on %s@%d", name, pos)
				}
			}
		}
	})
}
