package sample

import (
	"math/rand/v2"
	"strings"
	"testing"
)

type push struct {
	piece, emit string
	stopped     bool
}

func TestStopChecker(t *testing.T) {
	tests := []struct {
		name  string
		stops []string
		steps []push
		flush string
	}{
		{
			name: "no stop strings", stops: nil,
			steps: []push{{"Hello", "Hello", false}, {"</s>", "</s>", false}},
		},
		{
			name: "stop string inside one piece", stops: []string{"</s>"},
			steps: []push{{"Hi", "Hi", false}, {" there</s>more", " there", true}, {"after", "", true}},
		},
		{
			name: "stop string split across pieces", stops: []string{"</s>"},
			steps: []push{
				{"Hello wor", "Hello wor", false},
				{"ld</", "ld", false},
				{"s", "", false},
				{">", "", true},
			},
		},
		{
			name: "one character at a time", stops: []string{"END"},
			steps: []push{{"E", "", false}, {"N", "", false}, {"D", "", true}},
		},
		{
			name: "false start is released", stops: []string{"</s>"},
			steps: []push{{"a</", "a", false}, {"b", "</b", false}},
		},
		{
			name: "held text comes out of Flush", stops: []string{"</s>"},
			steps: []push{{"abc</", "abc", false}},
			flush: "</",
		},
		{
			name: "overlapping prefix", stops: []string{"aab"},
			steps: []push{{"a", "", false}, {"a", "", false}, {"a", "a", false}, {"b", "", true}},
		},
		{
			name: "several stop strings", stops: []string{"\n\n", "User:"},
			steps: []push{{"Hi\n", "Hi", false}, {"Us", "\n", false}, {"er:", "", true}},
		},
		{
			name: "earliest stop string wins", stops: []string{"cd", "bcde"},
			steps: []push{{"abcdef", "a", true}},
		},
		{
			name: "stop at the start", stops: []string{"###"},
			steps: []push{{"### x", "", true}},
		},
		{
			name: "empty stop strings are ignored", stops: []string{"", "x"},
			steps: []push{{"ab", "ab", false}, {"cx", "c", true}},
		},
		{
			name: "multi-byte stop string", stops: []string{"。\n"},
			steps: []push{{"好。", "好", false}, {"\n", "", true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewStopChecker(tt.stops)
			for i, st := range tt.steps {
				emit, stopped := c.Push(st.piece)
				if emit != st.emit || stopped != st.stopped {
					t.Fatalf("step %d Push(%q) = %q, %v; want %q, %v", i, st.piece, emit, stopped, st.emit, st.stopped)
				}
			}
			if got := c.Flush(); got != tt.flush {
				t.Errorf("Flush() = %q, want %q", got, tt.flush)
			}
		})
	}
}

// However the text is cut into pieces, what is shown is always a beginning
// of the text before the first stop string, and all of it in the end.
func TestStopCheckerAnySplit(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	stops := []string{"<|im_end|>", "\nUser:", "</s>"}
	texts := []string{
		"Sure! Here it is.\nUse: this <|im_end|> and more",
		"<|im_<|im_end|>",
		"no stop here, only < and </ and <|im_",
		"line\nUser line\nUser: x",
		"</s",
	}
	for _, text := range texts {
		want := text
		if i := firstIndex(text, stops); i >= 0 {
			want = text[:i]
		}
		for range 200 {
			c := NewStopChecker(stops)
			var shown strings.Builder
			stopped := false
			for rest := text; rest != "" && !stopped; {
				n := 1 + r.IntN(min(len(rest), 6))
				var emit string
				emit, stopped = c.Push(rest[:n])
				rest = rest[n:]
				shown.WriteString(emit)
				if !strings.HasPrefix(want, shown.String()) {
					t.Fatalf("%q: showed %q, not a beginning of %q", text, shown.String(), want)
				}
			}
			if !stopped {
				shown.WriteString(c.Flush())
			}
			if shown.String() != want {
				t.Fatalf("%q: showed %q in all, want %q", text, shown.String(), want)
			}
		}
	}
}

func firstIndex(text string, stops []string) int {
	first := -1
	for _, s := range stops {
		if i := strings.Index(text, s); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	return first
}
