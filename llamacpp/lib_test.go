package llamacpp

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"llamago/internal/testenv"
)

func TestFindUpward(t *testing.T) {
	root := t.TempDir()
	bins := filepath.Join(root, binsSubdir)
	if err := os.MkdirAll(bins, 0o755); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(root, "a", "b", "c")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	// The folder alone is not enough: libllama must be in it.
	if got := findUpward(deep); got != "" {
		t.Errorf("findUpward without libllama = %q, want \"\"", got)
	}
	if err := os.WriteFile(filepath.Join(bins, libLlama), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, start := range []string{deep, root, filepath.Join(root, "a")} {
		if got := findUpward(start); got != bins {
			t.Errorf("findUpward(%s) = %q, want %q", start, got, bins)
		}
	}
}

func TestDefaultLibDir(t *testing.T) {
	t.Setenv("LLAMAGO_LLAMACPP_LIB", "/some/where")
	if got := DefaultLibDir(); got != "/some/where" {
		t.Errorf("with $LLAMAGO_LLAMACPP_LIB: %q", got)
	}
	t.Setenv("LLAMAGO_LLAMACPP_LIB", "")
	// The tests run in the package folder, below the repository's
	// node_modules when it is installed.
	want := filepath.Join(testenv.RepoRoot(), binsSubdir)
	if _, err := os.Stat(filepath.Join(want, libLlama)); err != nil {
		want = ""
	}
	if got := DefaultLibDir(); got != want && want != "" {
		t.Errorf("DefaultLibDir = %q, want %q", got, want)
	}
}

func TestOpenTwice(t *testing.T) {
	lib := openLib(t)
	again, err := Open(lib.Dir())
	if err != nil || again != lib {
		t.Errorf("second Open = %p, %v; want the same Lib %p", again, err, lib)
	}
	if _, err := OpenWith(lib.Dir(), OpenOptions{CPUVariant: "icelake"}); err == nil {
		t.Error("Open with other options in the same process: no error")
	}
	if _, err := Open(""); err == nil {
		t.Error("Open(\"\"): no error")
	}
	variants, err := lib.LoadedCPUVariants()
	if err != nil {
		t.Fatal(err)
	}
	if len(variants) == 0 {
		t.Error("no libggml-cpu-*.so mapped after Open")
	}
	t.Logf("CPU backend chosen by ggml: %v", variants)
	if len(lib.RecentLog(1000)) == 0 {
		t.Error("nothing captured from llama.cpp's log")
	}
}

// childVariantEnv tells a re-run of the test binary which CPU variant to
// load: the libraries can be loaded once per process, so each variant is
// tried in a child process.
const childVariantEnv = "LLAMACPP_TEST_CPU_VARIANT"

func TestOpenCPUVariant(t *testing.T) {
	if v := os.Getenv(childVariantEnv); v != "" {
		runVariantChild(t, v)
		return
	}
	testenv.RequireLlamaCpp(t)
	tests := []struct {
		variant string
		ok      bool
	}{
		{"x64", true}, // the baseline build runs on any x86-64
		{"no-such-cpu", false},
	}
	for _, tt := range tests {
		cmd := exec.Command(os.Args[0], "-test.run=^TestOpenCPUVariant$", "-test.v")
		cmd.Env = append(os.Environ(), childVariantEnv+"="+tt.variant)
		out, err := cmd.CombinedOutput()
		if (err == nil) != tt.ok {
			t.Errorf("variant %s: exit error %v, want ok=%v\n%s", tt.variant, err, tt.ok, out)
		}
		if tt.ok && !strings.Contains(string(out), "loaded ["+tt.variant+"]") {
			t.Errorf("variant %s: child did not report it:\n%s", tt.variant, out)
		}
	}
}

func runVariantChild(t *testing.T, variant string) {
	lib, err := OpenWith(testenv.RequireLlamaCpp(t), OpenOptions{CPUVariant: variant})
	if err != nil {
		t.Fatal(err)
	}
	got, err := lib.LoadedCPUVariants()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{variant}) {
		t.Fatalf("loaded %v, want only %s", got, variant)
	}
	m := loadStories(t, lib)
	ctx, err := m.NewContext(ContextOptions{NCtx: 64, NBatch: 8, NThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	if err := ctx.Decode([]int32{m.BOS()}, 0, false); err != nil {
		t.Fatal(err)
	}
	if !allFinite(ctx.Logits(-1)) {
		t.Fatal("logits not finite")
	}
	t.Logf("loaded %v", got)
}
