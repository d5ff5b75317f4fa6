package cuda

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ebitengine/purego"
)

// TestCUBLASCandidates checks the library search over fake trees laid out
// like the toolkit's and pip's: the order ($LLAMAGO_CUBLAS, the sonames,
// the toolkit's directories, the wheels' by site directory, .13 before
// .12), that only the sonames match (not libcublasLt, not versioned file
// names, not other libraries), and that $LLAMAGO_CUDA_CUBLAS=0 turns the
// search off.
func TestCUBLASCandidates(t *testing.T) {
	sonames := []string{"libcublas.so.13", "libcublas.so.12"}
	tests := []struct {
		name  string
		files []string          // under the tree's root; "~" is $HOME
		env   map[string]string // besides HOME
		want  []string          // after the sonames, under the root; "~" is $HOME
		off   bool              // the search returns nothing
		first string            // expected before the sonames
	}{
		{
			name: "nothing installed",
		},
		{
			name: "toolkit",
			files: []string{
				"/usr/local/cuda/lib64/libcublas.so.13",
				"/usr/local/cuda/lib64/libcublas.so.13.1.0.3",
				"/usr/local/cuda/lib64/libcublasLt.so.13",
				"/usr/local/cuda/lib64/libcublas.so",
				"/usr/local/cuda/lib64/libcudart.so.13",
				"/usr/local/cuda/targets/x86_64-linux/lib/libcublas.so.12",
			},
			want: []string{
				"/usr/local/cuda/lib64/libcublas.so.13",
				"/usr/local/cuda/targets/x86_64-linux/lib/libcublas.so.12",
			},
		},
		{
			name: "newest major first in a directory",
			files: []string{
				"/usr/local/cuda/lib64/libcublas.so.12",
				"/usr/local/cuda/lib64/libcublas.so.13",
			},
			want: []string{
				"/usr/local/cuda/lib64/libcublas.so.13",
				"/usr/local/cuda/lib64/libcublas.so.12",
			},
		},
		{
			name: "wheels",
			files: []string{
				"~/.local/lib/python3.11/site-packages/nvidia/cublas/lib/libcublas.so.12",
				"/usr/lib/python3.10/dist-packages/nvidia/cublas/lib/libcublas.so.12",
				"/usr/local/lib/python3.12/dist-packages/nvidia/cu13/lib/libcublas.so.13",
				"/usr/local/lib/python3.12/dist-packages/nvidia/cu13/lib/libcublasLt.so.13",
				"/usr/local/lib/python3.12/dist-packages/nvidia/cublas/lib/libcublas.so.12",
				"/usr/local/lib/python3.11/site-packages/nvidia/cublas/lib/libcublas.so.12",
				"/usr/local/lib/python3.12/dist-packages/torch/lib/libcublas.so.12", // not searched
			},
			want: []string{
				"/usr/local/lib/python3.12/dist-packages/nvidia/cublas/lib/libcublas.so.12",
				"/usr/local/lib/python3.12/dist-packages/nvidia/cu13/lib/libcublas.so.13",
				"/usr/lib/python3.10/dist-packages/nvidia/cublas/lib/libcublas.so.12",
				"/usr/local/lib/python3.11/site-packages/nvidia/cublas/lib/libcublas.so.12",
				"~/.local/lib/python3.11/site-packages/nvidia/cublas/lib/libcublas.so.12",
			},
		},
		{
			name:  "$LLAMAGO_CUBLAS first",
			files: []string{"/usr/local/cuda/lib64/libcublas.so.13"},
			env:   map[string]string{envCUBLASFile: "/opt/mine/libcublas.so.13"},
			first: "/opt/mine/libcublas.so.13",
			want:  []string{"/usr/local/cuda/lib64/libcublas.so.13"},
		},
		{
			name:  "turned off",
			files: []string{"/usr/local/cuda/lib64/libcublas.so.13"},
			env:   map[string]string{envCUBLASSwitch: "0", envCUBLASFile: "/opt/mine/libcublas.so.13"},
			off:   true,
		},
		{
			name:  "1 is on",
			files: []string{"/usr/local/cuda/lib64/libcublas.so.13"},
			env:   map[string]string{envCUBLASSwitch: "1"},
			want:  []string{"/usr/local/cuda/lib64/libcublas.so.13"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			home := "/home/someone"
			expand := func(p string) string {
				if rest, ok := strings.CutPrefix(p, "~"); ok {
					p = home + rest
				}
				return filepath.Join(root, p)
			}
			for _, f := range tc.files {
				p := expand(f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("not a library"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			env := map[string]string{"HOME": home}
			for k, v := range tc.env {
				env[k] = v
			}
			got := cublasCandidates(func(k string) string { return env[k] }, root)
			var want []string
			if !tc.off {
				if tc.first != "" {
					want = append(want, tc.first)
				}
				want = append(want, sonames...)
				for _, w := range tc.want {
					want = append(want, expand(w))
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("candidates:\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestCUBLASCandidatesNoHome checks that without $HOME the search skips
// ~/.local instead of searching relative to the root.
func TestCUBLASCandidatesNoHome(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, ".local/lib/python3.12/site-packages/nvidia/cublas/lib/libcublas.so.12")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got := cublasCandidates(func(string) string { return "" }, root)
	if slices.Contains(got, p) {
		t.Errorf("candidates %q contain %s without $HOME", got, p)
	}
}

// TestOpenCUBLASFailures checks that a search that loads nothing says so
// and names every file tried (here fake files and a missing one), and
// that the switch turned off says that.
func TestOpenCUBLASFailures(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "libcublas.so.13")
	if err := os.WriteFile(fake, []byte("not a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing", "libcublas.so.12")
	lib, name, err := openCUBLAS([]string{fake, missing})
	if lib != nil || name != "" || err == nil {
		t.Fatalf("openCUBLAS of a fake file = %v, %q, %v; want an error", lib, name, err)
	}
	for _, p := range []string{fake, missing} {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not name %s", err, p)
		}
	}
	if _, _, err := openCUBLAS(nil); err == nil || !strings.Contains(err.Error(), envCUBLASSwitch) {
		t.Errorf("openCUBLAS(nil) = %v; want an error naming $%s", err, envCUBLASSwitch)
	}
}

// TestMappedFile checks how the loaded library's file is found in
// /proc/self/maps: the first mapping whose base name has the prefix, not
// libcublasLt, not anonymous mappings.
func TestMappedFile(t *testing.T) {
	maps := `55d0c0000000-55d0c0001000 r--p 00000000 08:01 123 /usr/bin/llamago
7f0000000000-7f0000001000 rw-p 00000000 00:00 0 
7f0000100000-7f0000200000 r--p 00000000 08:01 456 /usr/local/cuda/lib64/libcublasLt.so.13.1.0.3
7f0000300000-7f0000400000 r--p 00000000 08:01 789 /usr/local/cuda/lib64/libcublas.so.13.1.0.3
7f0000400000-7f0000500000 r-xp 00100000 08:01 789 /usr/local/cuda/lib64/libcublas.so.13.1.0.3
7f0000600000-7f0000601000 rw-p 00000000 00:00 0                          [stack]
`
	for _, tc := range []struct{ prefix, want string }{
		{"libcublas.so", "/usr/local/cuda/lib64/libcublas.so.13.1.0.3"},
		{"libcublasLt.so", "/usr/local/cuda/lib64/libcublasLt.so.13.1.0.3"},
		{"libcudart.so", ""},
	} {
		if got := mappedFile(maps, tc.prefix); got != tc.want {
			t.Errorf("mappedFile(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

// TestCUBLASErrorNames checks that a failed call's error names the call and
// the status.
func TestCUBLASErrorNames(t *testing.T) {
	if err := cublasCheck("cublasGemmEx", cublasStatusSuccess); err != nil {
		t.Errorf("success: %v", err)
	}
	for _, tc := range []struct {
		status int32
		want   string
	}{
		{7, "cuda: cuBLAS cublasGemmEx: CUBLAS_STATUS_INVALID_VALUE (7)"},
		{13, "cuda: cuBLAS cublasGemmEx: CUBLAS_STATUS_EXECUTION_FAILED (13)"},
		{99, "cuda: cuBLAS cublasGemmEx: unknown cuBLAS status (99)"},
	} {
		err := cublasCheck("cublasGemmEx", tc.status)
		if err == nil || err.Error() != tc.want {
			t.Errorf("status %d: %v, want %q", tc.status, err, tc.want)
		}
	}
}

// TestProductGemmLayout checks the column-major GEMM that MatMul hands
// cuBLAS against the row-major product it stands for, by evaluating the
// GEMM as BLAS defines it (C[i + j·ldc] = Σ_p op(A)[i,p]·op(B)[p,j], with
// A[i,p] at a[i + p·lda] and op(A) = Aᵀ for a transposed operand) over
// the same row-major buffers, on small odd shapes and a padded W stride.
func TestProductGemmLayout(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 7))
	for _, tc := range []struct{ rows, cols, stride, ntok int }{
		{3, 5, 5, 2}, {7, 4, 6, 5}, {1, 9, 9, 16}, {16, 1, 3, 1},
	} {
		w := make([]float64, tc.rows*tc.stride)
		x := make([]float64, tc.ntok*tc.cols)
		for i := range w {
			w[i] = float64(r.IntN(9) - 4)
		}
		for i := range x {
			x[i] = float64(r.IntN(9) - 4)
		}
		g := productGemm(tc.rows, tc.cols, tc.stride, tc.ntok)
		// at reads op(M)[i,p] of a column-major operand with leading
		// dimension ld.
		at := func(m []float64, trans int32, ld int32, i, p int) float64 {
			if trans == cublasOpT {
				return m[p+i*int(ld)]
			}
			return m[i+p*int(ld)]
		}
		c := make([]float64, int(g.ldc)*int(g.n))
		for i := range int(g.m) {
			for j := range int(g.n) {
				var sum float64
				for p := range int(g.k) {
					sum += at(w, g.transA, g.lda, i, p) * at(x, g.transB, g.ldb, p, j)
				}
				c[i+j*int(g.ldc)] = sum
			}
		}
		for tok := range tc.ntok {
			for row := range tc.rows {
				var want float64
				for col := range tc.cols {
					want += x[tok*tc.cols+col] * w[row*tc.stride+col]
				}
				if got := c[tok*tc.rows+row]; got != want {
					t.Fatalf("%+v: Y[%d][%d] = %v, want %v (gemm %+v)", tc, tok, row, got, want, g)
				}
			}
		}
	}
}

// TestCUBLASSignaturesRegister binds every cuBLAS function type to some
// symbol of the C library: purego checks a signature when it is
// registered (argument kinds, how many go on the stack: cublasGemmEx
// takes 19) and panics on one it cannot call, which on a GPU machine
// would crash New. Nothing is called.
func TestCUBLASSignaturesRegister(t *testing.T) {
	h, err := purego.Dlopen("libc.so.6", purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		t.Skipf("no libc.so.6 to take a symbol from: %v", err)
	}
	defer purego.Dlclose(h)
	sym, err := purego.Dlsym(h, "abs")
	if err != nil {
		t.Fatal(err)
	}
	lib := &cublasLib{}
	for _, s := range lib.symbols() {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: purego cannot bind its Go signature: %v", s.name, r)
				}
			}()
			purego.RegisterFunc(s.fp, sym)
		}()
	}
	if lib.gemmEx == nil || lib.create == nil {
		t.Error("functions not bound")
	}
}
