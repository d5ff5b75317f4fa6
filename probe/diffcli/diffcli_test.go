package diffcli

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"llamago/probe"
)

// writeDump writes a small two-layer, three-position run; edit, when not
// nil, may change a tensor before it is emitted.
func writeDump(t *testing.T, dir, name string, info probe.DumpInfo, edit func(name string, pos int, data []float32)) string {
	t.Helper()
	path := filepath.Join(dir, name)
	s := probe.NewSet(probe.Filter{}, probe.NewDump(path, info))
	names := []string{probe.Embd}
	for _, ln := range probe.NewLayerNames(2) {
		names = append(names, ln.AttnNorm, ln.Q, ln.QRope, ln.FFNOut, ln.Out)
	}
	names = append(names, probe.Logits)
	for i, n := range names {
		for pos := 0; pos < 3; pos++ {
			data := make([]float32, 6)
			for j := range data {
				data[j] = float32((i*7+pos*3+j)%11) - 5
			}
			if edit != nil {
				edit(n, pos, data)
			}
			if err := s.Emit(n, pos, []int{2, 3}, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

var info = probe.DumpInfo{TokenIDs: []int32{1, 2, 3}, ModelSHA256: "aa", Backend: "test"}

func run(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	ref := writeDump(t, dir, "ref.safetensors", info, nil)
	same := writeDump(t, dir, "same.safetensors", info, nil)
	bad := writeDump(t, dir, "bad.safetensors", info, func(name string, pos int, data []float32) {
		if name == "blk.1.q" && pos == 1 {
			for i := range data {
				data[i] *= 1.05
			}
		}
	})
	otherIDs := writeDump(t, dir, "ids.safetensors", probe.DumpInfo{TokenIDs: []int32{1, 2, 4}, ModelSHA256: "aa"}, nil)
	otherShape := filepath.Join(dir, "shape.safetensors")
	{
		s := probe.NewSet(probe.Filter{}, probe.NewDump(otherShape, info))
		if err := s.Emit(probe.Embd, 0, []int{6}, make([]float32, 6)); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	onlyOther := filepath.Join(dir, "other.safetensors")
	{
		s := probe.NewSet(probe.Filter{}, probe.NewDump(onlyOther, info))
		if err := s.Emit("blk.9.q", 0, []int{1}, []float32{1}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	truncated := filepath.Join(dir, "truncated.safetensors")
	raw, err := os.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(truncated, raw[:len(raw)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	notST := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notST, []byte("hello, this is not a dump at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	absurd := filepath.Join(dir, "absurd.safetensors")
	if err := os.WriteFile(absurd, binary.LittleEndian.AppendUint64(nil, 1<<60), 0o644); err != nil {
		t.Fatal(err)
	}
	html := filepath.Join(dir, "report.html")

	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		last     string // last line of stdout, when not empty
		inStdout string
		inStderr string
		notInOut string
	}{
		{"agree", []string{same, ref}, 0, "all probes agree", "", "", ""},
		{"diverge", []string{bad, ref}, 1, "first divergence: blk.1.q at position 1 (relative error 0.05)", "", "", ""},
		{"flags after the dumps", []string{bad, ref, "--agree", "0.1", "--warn", "0.2"}, 0, "all probes agree", "", "", ""},
		{"warn threshold", []string{bad, ref, "--warn", "0.06"}, 0, "all probes agree", "blk.1.q", "", ""},
		{"probe filter", []string{"--probe", "blk.0.*,embd", bad, ref}, 0, "all probes agree", "", "", ""},
		{"pos filter", []string{"--pos", "0,2", bad, ref}, 0, "all probes agree", "", "", ""},
		{"all rows", []string{"--all", same, ref}, 0, "all probes agree", "blk.0.attn_norm", "", ""},
		{"compact by default", []string{same, ref}, 0, "all probes agree", "", "", "blk.0.attn_norm"},
		{"html", []string{bad, ref, "--html", html}, 1, "first divergence: blk.1.q at position 1 (relative error 0.05)", "", "", ""},
		{"double dash", []string{"--", bad, ref}, 1, "", "", "", ""},
		{"refused", []string{otherIDs, ref}, 2, "", "", "token ids differ at index 2: A has 4, B has 3 (A [1 2 4], B [1 2 3]) (pass --force to compare anyway)", ""},
		{"forced", []string{otherIDs, ref, "--force"}, 0, "all probes agree", "note: forced", "", ""},
		{"shape mismatch", []string{otherShape, ref}, 2, "", "", "has shape [6] in A but [2 3] in B", ""},
		{"all missing", []string{onlyOther, ref}, 2, "", "", "no probe is in both", ""},
		{"one dump", []string{ref}, 2, "", "", "want two dumps", ""},
		{"three dumps", []string{ref, ref, ref}, 2, "", "", "want two dumps", ""},
		{"unknown flag", []string{"--bogus", ref, ref}, 2, "", "", "bogus", ""},
		{"bad threshold", []string{"--agree", "0.5", "--warn", "0.1", ref, ref}, 2, "", "", "--agree", ""},
		{"bad glob", []string{"--probe", "blk.[", ref, ref}, 2, "", "", "pattern", ""},
		{"missing file", []string{filepath.Join(dir, "nope"), ref}, 2, "", "", "nope", ""},
		{"truncated", []string{truncated, ref}, 2, "", "", "truncated", ""},
		{"not safetensors", []string{notST, ref}, 2, "", "", "notes.txt", ""},
		{"absurd header", []string{absurd, ref}, 2, "", "", "absurd", ""},
		{"help", []string{"-h"}, 0, "", "", "usage: llamago diff", ""},
	} {
		code, stdout, stderr := run(tc.args...)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", tc.name, code, tc.code, stdout, stderr)
			continue
		}
		if tc.last != "" && lastLine(stdout) != tc.last {
			t.Errorf("%s: last line %q, want %q", tc.name, lastLine(stdout), tc.last)
		}
		if !strings.Contains(stdout, tc.inStdout) {
			t.Errorf("%s: stdout lacks %q:\n%s", tc.name, tc.inStdout, stdout)
		}
		if !strings.Contains(stderr, tc.inStderr) {
			t.Errorf("%s: stderr lacks %q:\n%s", tc.name, tc.inStderr, stderr)
		}
		if tc.notInOut != "" && strings.Contains(stdout, tc.notInOut) {
			t.Errorf("%s: stdout has %q:\n%s", tc.name, tc.notInOut, stdout)
		}
		if code == 2 && stdout != "" && tc.name != "help" {
			t.Errorf("%s: an error run printed a report:\n%s", tc.name, stdout)
		}
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatalf("--html wrote nothing: %v", err)
	}
	if !strings.Contains(string(page), "<svg") || !strings.Contains(string(page), "blk.1.q") {
		t.Error("HTML report lacks the chart or the divergence")
	}
}
