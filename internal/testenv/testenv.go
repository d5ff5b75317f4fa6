// Package testenv finds the assets tests need (the shared models and
// vectors, llama.cpp's libraries) and decides what a test does when one is
// missing: in CI (CI=true) it fails, elsewhere it skips with a message that
// says what is missing.
package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Asset names a file under the shared folder with its known SHA-256.
type Asset struct {
	Path   string // relative to the shared folder
	SHA256 string
}

// The shared assets, with the digests of ../shared/README.md.
var (
	Stories260KGGUF = Asset{"models/stories260K/stories260K.gguf", "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d"}
	Stories260KBin  = Asset{"models/stories260K/stories260K.bin", "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696"}
	Tok512Bin       = Asset{"models/stories260K/tok512.bin", "037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312"}
	TinyStories656K = Asset{"models/TinyStories-656K/model.safetensors", "f1b39bf160553848754073d474aa14708343969871f57f3c16eeefcaccd04a5d"}
	TinyStoriesTok  = Asset{"models/TinyStories-656K/tokenizer.json", "9a7917d490ac034a4e69eb081096226971887e9e66b0969355421613f62b12e7"}
	LlamaSPMVocab   = Asset{"tokenizers/llama-spm/ggml-vocab-llama-spm.gguf", "16c3724582d59aa8bf84711894e833f916ee46a31d80e21312759c48bf8d0e69"}
	LlamaSPMInp     = Asset{"tokenizers/llama-spm/ggml-vocab-llama-spm.gguf.inp", "ef7a25a263fba141f64a8a842ceb1c572cdb8e1313f592d974f7a06bbd3a4934"}
	LlamaSPMOut     = Asset{"tokenizers/llama-spm/ggml-vocab-llama-spm.gguf.out", "ea602819af9f9af53a7af285a284ee810e70a4a14a5972e4c891ccd683488af5"}
)

// InCI reports whether the tests run in CI, where a missing asset fails.
func InCI() bool { return os.Getenv("CI") != "" && os.Getenv("CI") != "false" }

// Missing stops the test because something it needs is absent: Fatal in CI,
// Skip elsewhere.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("missing: %s", msg)
	}
	t.Skipf("missing: %s", msg)
}

// RepoRoot is the root of the repository (the folder holding go.mod).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// SharedDir is the folder of shared assets: $LLAMAGO_SHARED, or ../shared
// beside the repository.
func SharedDir() string {
	if d := os.Getenv("LLAMAGO_SHARED"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), "..", "shared")
}

var digestCache sync.Map // path -> error (nil when the digest matched)

// Path returns the absolute path of a shared asset after checking that it
// exists and that its SHA-256 is the expected one. A missing asset goes
// through Missing; a wrong digest always fails.
func Path(t testing.TB, a Asset) string {
	t.Helper()
	p := filepath.Join(SharedDir(), a.Path)
	if _, err := os.Stat(p); err != nil {
		Missing(t, "shared asset %s (set LLAMAGO_SHARED to the shared folder): %v", a.Path, err)
	}
	if v, ok := digestCache.Load(p); ok {
		if v != nil {
			t.Fatal(v)
		}
		return p
	}
	err := checkDigest(p, a.SHA256)
	if err != nil {
		digestCache.Store(p, err)
		t.Fatal(err)
	}
	digestCache.Store(p, nil)
	return p
}

func checkDigest(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("hashing %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("shared asset %s has SHA-256 %s, want %s: it is not the file the tests were written for", path, got, want)
	}
	return nil
}

// LlamaCppLibDir returns the folder of llama.cpp's shared libraries from the
// npm package node-llama-cpp: $LLAMAGO_LLAMACPP_LIB, or
// node_modules/@node-llama-cpp/linux-x64/bins/linux-x64 in the repository.
// It returns "" when neither exists.
func LlamaCppLibDir() string {
	if d := os.Getenv("LLAMAGO_LLAMACPP_LIB"); d != "" {
		return d
	}
	d := filepath.Join(RepoRoot(), "node_modules", "@node-llama-cpp", "linux-x64", "bins", "linux-x64")
	if _, err := os.Stat(filepath.Join(d, "libllama.v0.4.0.so")); err == nil {
		return d
	}
	return ""
}

// RequireLlamaCpp returns LlamaCppLibDir or stops the test through Missing.
func RequireLlamaCpp(t testing.TB) string {
	t.Helper()
	d := LlamaCppLibDir()
	if d == "" {
		Missing(t, "llama.cpp libraries (run: npm ci --omit=optional --ignore-scripts)")
	}
	return d
}

// Argmax is the index of the largest value (the first of equal ones): the
// greedy token of a logits row.
func Argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}

// RelErr is ‖a−b‖/‖b‖, computed in float64; with ‖b‖ = 0 it is 0 when a
// equals b and +Inf otherwise.
func RelErr[F float32 | float64](a, b []F) float64 {
	var num, den float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	if den == 0 {
		if num == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return math.Sqrt(num / den)
}
