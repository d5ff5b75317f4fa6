package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"llamago/gguf"
	"llamago/internal/testenv"
)

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = dispatch(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// rewrite copies the GGUF file at src to a new file, letting edit change
// metadata and tensors on the way.
func rewrite(t *testing.T, src string, edit func(f *gguf.File, w *gguf.Writer, name string, shape []uint64, data []byte) ([]uint64, []byte, bool), kv func(key string, v gguf.Value) gguf.Value) string {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := gguf.NewWriter()
	for _, e := range f.KV {
		v := e.Value
		if kv != nil {
			v = kv(e.Key, v)
		}
		w.Set(e.Key, v)
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		shape, data, keep := ti.Shape, f.TensorData(ti), true
		if edit != nil {
			shape, data, keep = edit(f, w, ti.Name, shape, data)
		}
		if keep {
			if err := w.AddTensor(ti.Name, ti.Type, shape, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	out := filepath.Join(t.TempDir(), "edited.gguf")
	if err := w.WriteFile(out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRunJSONGreedy(t *testing.T) {
	path := testenv.Path(t, testenv.Stories260KGGUF)
	stdout, stderr, code := runCLI(t, "run", "-m", path, "-p", "Once upon a time", "-n", "16", "--temp", "0", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res runResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout)
	}
	if len(res.PromptIDs) == 0 || res.PromptIDs[0] != 1 || len(res.GeneratedIDs) != 16 || res.StopReason != "length" || res.Text == "" {
		t.Fatalf("unexpected result %+v", res)
	}
	// Greedy is deterministic: a second run gives the same ids (with the
	// page cache step too, which changes nothing but speed).
	stdout2, _, _ := runCLI(t, "run", "-m", path, "-p", "Once upon a time", "-n", "16", "--temp", "0", "--json", "--huge-pages")
	var res2 runResult
	if err := json.Unmarshal([]byte(stdout2), &res2); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.GeneratedIDs, res2.GeneratedIDs) {
		t.Fatalf("greedy runs differ: %v vs %v", res.GeneratedIDs, res2.GeneratedIDs)
	}
	// Streaming mode prints the same text on stdout, and nothing else.
	text, _, code := runCLI(t, "run", "-m", path, "-p", "Once upon a time", "-n", "16", "--temp", "0")
	if code != 0 || strings.TrimSuffix(text, "\n") != res.Text {
		t.Fatalf("streamed %q, JSON text %q", text, res.Text)
	}
}

func TestRunBadInput(t *testing.T) {
	path := testenv.Path(t, testenv.Stories260KGGUF)
	missing := rewrite(t, path, func(_ *gguf.File, _ *gguf.Writer, name string, shape []uint64, data []byte) ([]uint64, []byte, bool) {
		return shape, data, name != "blk.2.ffn_up.weight"
	}, nil)
	wrongShape := rewrite(t, path, func(_ *gguf.File, _ *gguf.Writer, name string, shape []uint64, data []byte) ([]uint64, []byte, bool) {
		if name == "blk.1.attn_k.weight" {
			return []uint64{shape[1], shape[0]}, data, true
		}
		return shape, data, true
	}, nil)
	otherArch := rewrite(t, path, nil, func(key string, v gguf.Value) gguf.Value {
		if key == "general.architecture" {
			return gguf.String("gpt2")
		}
		return v
	})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no model", []string{"run", "-p", "x"}, "no model"},
		{"missing file", []string{"run", "-m", filepath.Join(t.TempDir(), "none.gguf"), "-p", "x"}, "none.gguf"},
		{"not gguf", []string{"run", "-m", testenv.Path(t, testenv.Tok512Bin), "-p", "x"}, "tok512.bin"},
		{"missing tensor", []string{"run", "-m", missing, "-p", "x"}, "tensor blk.2.ffn_up.weight is missing"},
		{"wrong shape", []string{"run", "-m", wrongShape, "-p", "x"}, "tensor blk.1.attn_k.weight has shape [32 64], want [64 32]"},
		{"architecture", []string{"run", "-m", otherArch, "-p", "x"}, `architecture "gpt2" is not supported`},
		{"prompt over context", []string{"run", "-m", path, "-c", "8", "-p", strings.Repeat("Once upon a time ", 8), "--no-chat"}, "the context holds 8"},
		{"bad temperature", []string{"run", "-m", path, "-p", "x", "--top-p", "2"}, "top"},
		{"chat and no-chat", []string{"run", "-m", path, "-p", "x", "--chat", "--no-chat"}, "exclude"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, tc.args...)
			if code == 0 {
				t.Fatalf("exit 0, want an error containing %q", tc.want)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr %q does not contain %q", stderr, tc.want)
			}
		})
	}
}

func TestRunInvalidUTF8AndEmptyPrompt(t *testing.T) {
	path := testenv.Path(t, testenv.Stories260KGGUF)
	// Invalid UTF-8 is encoded through byte tokens, as llama.cpp does; the
	// run must not fail or panic, and the text it prints must be valid.
	stdout, stderr, code := runCLI(t, "run", "-m", path, "-p", "caf\xe9 \xff\xfe", "-n", "4", "--temp", "0", "--json", "--no-chat")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res runResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	// An empty prompt without the chat template starts from BOS alone.
	stdout, stderr, code = runCLI(t, "run", "-m", path, "-p", "", "-n", "4", "--temp", "0", "--json", "--no-chat")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.PromptIDs) != 1 || res.PromptIDs[0] != 1 {
		t.Fatalf("empty prompt gave ids %v, want [1] (BOS)", res.PromptIDs)
	}
}

func TestTokenizeCLI(t *testing.T) {
	vocab := testenv.Path(t, testenv.LlamaSPMVocab)
	stdout, stderr, code := runCLI(t, "tokenize", "-m", vocab, "--special", "--", "<|user|>\n1</s>\n<|assistant|>\n")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	fields := strings.Fields(stdout)
	if len(fields) < 4 || fields[0] != "1" {
		t.Fatalf("ids %q: want BOS first", stdout)
	}
	if !strings.Contains(" "+stdout, " 2 ") {
		t.Fatalf("ids %q: </s> with --special must be EOS (2)", stdout)
	}
	// A text starting with a dash after "--" is text, not a flag.
	if _, stderr, code := runCLI(t, "tokenize", "-m", vocab, "--no-bos", "--", "-n 5"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

func TestInspectCLI(t *testing.T) {
	stdout, stderr, code := runCLI(t, "inspect", testenv.Path(t, testenv.LlamaSPMVocab))
	if code != 0 || !strings.Contains(stdout, "no tensors") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, stderr, code := runCLI(t, "inspect", testenv.Path(t, testenv.Tok512Bin)); code == 0 || stderr == "" {
		t.Fatalf("inspect of a non-GGUF file: exit %d, stderr %q", code, stderr)
	}
}

func TestUnknownCommand(t *testing.T) {
	if _, stderr, code := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(stderr, "unknown command") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}
