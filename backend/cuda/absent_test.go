package cuda

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"

	"llamago/tensor"
)

// TestNewWithoutDriver checks the message a machine without the NVIDIA
// driver gets. On a machine with the driver it checks nothing.
func TestNewWithoutDriver(t *testing.T) {
	if h, err := purego.Dlopen(libName, purego.RTLD_NOW|purego.RTLD_GLOBAL); err == nil {
		purego.Dlclose(h)
		t.Skip(libName + " is present: the device tests (LLAMAGO_CUDA=1) cover this machine")
	}
	b, err := New(Options{})
	if err == nil {
		b.Close()
		t.Fatal("New succeeded without " + libName)
	}
	if !errors.Is(err, ErrNoDriver) {
		t.Fatalf("New: %v; want an error wrapping ErrNoDriver", err)
	}
	const want = "cuda: libcuda.so.1 not found: this machine has no NVIDIA driver"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("New: %q; want it to start with %q", err, want)
	}
	if be, err := Open(); be != nil || err == nil {
		t.Errorf("Open = %v, %v; want a nil backend and an error", be, err)
	}
}

func TestKernelPTXFromEnvironment(t *testing.T) {
	path := t.TempDir() + "/k.ptx"
	if err := os.WriteFile(path, []byte("// test ptx\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ptxEnv, path)
	if got, err := kernelPTX(nil, 9); err != nil || string(got) != "// test ptx\n" {
		t.Errorf("kernelPTX with $%s = %q, %v", ptxEnv, got, err)
	}
	if got, err := kernelPTX([]byte("given"), 9); err != nil || string(got) != "given" {
		t.Errorf("kernelPTX(given) = %q, %v", got, err)
	}
	t.Setenv(ptxEnv, path+".missing")
	if _, err := kernelPTX(nil, 8); err == nil || !strings.Contains(err.Error(), ptxEnv) {
		t.Errorf("kernelPTX with a missing file: %v; want an error naming $%s", err, ptxEnv)
	}
	t.Setenv(ptxEnv, "")
	if got, err := kernelPTX(nil, 8); err != nil || &got[0] != &embeddedPTX[0] {
		t.Errorf("kernelPTX without $%s for sm_80 is not the embedded compute_80 PTX (%v)", ptxEnv, err)
	}
	if got, err := kernelPTX(nil, 9); err != nil || &got[0] != &embeddedPTX90[0] {
		t.Errorf("kernelPTX without $%s for sm_90 is not the embedded compute_90 PTX (%v)", ptxEnv, err)
	}
}

// TestPTXTargets checks that the embedded PTX files target what their
// names say (the backend enables programmatic dependent launch only for
// PTX of sm_90 and newer) and ptxTarget's parsing.
func TestPTXTargets(t *testing.T) {
	if got := ptxTarget(embeddedPTX); got != 80 {
		t.Errorf("kernels/llamago.ptx targets sm_%d, want sm_80", got)
	}
	if got := ptxTarget(embeddedPTX90); got != 90 {
		t.Errorf("kernels/llamago_sm90.ptx targets sm_%d, want sm_90", got)
	}
	for ptx, want := range map[string]int{
		".version 8.8\n.target sm_90\n.address_size 64\n": 90,
		"//\n  .target sm_80  \n":                         80,
		".target sm_90a\n":                                90,
		"// no target\n":                                  0,
		"":                                                0,
	} {
		if got := ptxTarget([]byte(ptx)); got != want {
			t.Errorf("ptxTarget(%q) = %d, want %d", ptx, got, want)
		}
	}
}

// TestKernelArgs checks the packing of launch arguments: each pointer of
// the array points at its argument's bytes, little-endian.
func TestKernelArgs(t *testing.T) {
	var a kargs
	a.reset().ptr(0x1122334455667788).i32(-2).f32(1.5).i64(-3).flag(true).flag(false).optMat(nil).optMat(&mat{ptr: 42})
	if a.n != 8 {
		t.Fatalf("%d arguments packed, want 8", a.n)
	}
	u64 := func(i int) uint64 { return *(*uint64)(a.ptrs[i]) }
	i32 := func(i int) int32 { return *(*int32)(a.ptrs[i]) }
	if got := u64(0); got != 0x1122334455667788 {
		t.Errorf("pointer argument %#x", got)
	}
	if got := i32(1); got != -2 {
		t.Errorf("int32 argument %d", got)
	}
	if got := *(*float32)(a.ptrs[2]); got != 1.5 || math.Float32bits(got) != uint32(u64(2)) {
		t.Errorf("float32 argument %v", got)
	}
	if got := *(*int64)(a.ptrs[3]); got != -3 {
		t.Errorf("int64 argument %d", got)
	}
	if i32(4) != 1 || i32(5) != 0 {
		t.Errorf("flags %d, %d; want 1, 0", i32(4), i32(5))
	}
	if u64(6) != 0 || u64(7) != 42 {
		t.Errorf("optional matrices %d, %d; want 0, 42", u64(6), u64(7))
	}
	for i := range a.n {
		if a.ptrs[i] != unsafe.Pointer(&a.vals[i]) {
			t.Errorf("argument %d points outside its slot", i)
		}
	}
	a.reset()
	if a.n != 0 {
		t.Error("reset left arguments")
	}
}

// TestTypesHaveKernels checks that every type Types lists has a kernel
// code, each its own, and that other types have none.
func TestTypesHaveKernels(t *testing.T) {
	seen := map[int]bool{}
	for _, typ := range Types() {
		code, ok := gpuType(typ)
		if !ok || code < 0 || code >= numGPUTypes || seen[code] {
			t.Errorf("%s: code %d, %v", typ, code, ok)
		}
		seen[code] = true
	}
	if len(seen) != numGPUTypes {
		t.Errorf("%d types listed, %d kernel codes", len(seen), numGPUTypes)
	}
	for _, typ := range []tensor.Type{tensor.BF16, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1, tensor.Q2_K, tensor.Q3_K, tensor.Q5_K, tensor.Q8_K} {
		if _, ok := gpuType(typ); ok {
			t.Errorf("%s has a kernel code", typ)
		}
	}
}
