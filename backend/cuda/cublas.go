package cuda

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/ebitengine/purego"
)

// cuBLAS for F16 prefill products. The backend needs only the driver, but
// where NVIDIA's cuBLAS library is installed (the CUDA toolkit, a PyTorch
// wheel) its F16 GEMM is faster than mmh_f16 for prefill batches, and it
// is what llama.cpp uses for F16 weights. It is loaded at backend start
// with purego like libcuda; when it is missing or fails to start, products
// run on the backend's own kernels as before. cuBLAS's runtime API works
// in the device's primary context, which is the context the backend uses,
// and takes the backend's stream (a CUstream is a cudaStream_t).

// cublasMinTokens is the fewest activation rows an F16 product sends to
// cuBLAS. Below it the product is nearly a matrix-vector product bound by
// reading the weights, where mmh_f16's 64-token tile wastes little and
// flushing the launch queue (cuBLAS calls go straight to the stream, so
// the queue before them must be sent first, which also ends the queue's
// fusions and graph reuse) would cost more than a faster GEMM saves; at
// 16 rows and more the GEMM's compute dominates.
const cublasMinTokens = 16

// cublasWorkspaceBytes is the fixed workspace given to cuBLAS, so that no
// GEMM allocates device memory (an allocation synchronizes the device).
const cublasWorkspaceBytes = 32 << 20

// Environment variables of the cuBLAS path.
const (
	// envCUBLASFile names a libcublas file to try before the search.
	envCUBLASFile = "LLAMAGO_CUBLAS"
	// envCUBLASSwitch=0 turns cuBLAS off.
	envCUBLASSwitch = "LLAMAGO_CUDA_CUBLAS"
)

// cuBLAS and CUDA enum values used here (cublas_api.h, library_types.h).
const (
	cublasOpN           = 0  // CUBLAS_OP_N: no transpose
	cublasOpT           = 1  // CUBLAS_OP_T: transpose
	cudaR16F            = 2  // CUDA_R_16F: F16 (cudaDataType)
	cudaR32F            = 0  // CUDA_R_32F: float (cudaDataType)
	cublasCompute32F    = 68 // CUBLAS_COMPUTE_32F: float accumulation, no down-conversion
	cublasGemmDefault   = -1 // CUBLAS_GEMM_DEFAULT: cuBLAS picks the algorithm
	cublasDefaultMath   = 0  // CUBLAS_DEFAULT_MATH
	cublasStatusSuccess = 0  // CUBLAS_STATUS_SUCCESS
)

// cublasStatusNames are cublasStatus_t's names, for errors (cublas_api.h).
var cublasStatusNames = map[int32]string{
	0:  "CUBLAS_STATUS_SUCCESS",
	1:  "CUBLAS_STATUS_NOT_INITIALIZED",
	3:  "CUBLAS_STATUS_ALLOC_FAILED",
	7:  "CUBLAS_STATUS_INVALID_VALUE",
	8:  "CUBLAS_STATUS_ARCH_MISMATCH",
	11: "CUBLAS_STATUS_MAPPING_ERROR",
	13: "CUBLAS_STATUS_EXECUTION_FAILED",
	14: "CUBLAS_STATUS_INTERNAL_ERROR",
	15: "CUBLAS_STATUS_NOT_SUPPORTED",
	16: "CUBLAS_STATUS_LICENSE_ERROR",
}

// cublasError is a failed cuBLAS call.
type cublasError struct {
	Call   string
	Status int32
}

func (e *cublasError) Error() string {
	name, ok := cublasStatusNames[e.Status]
	if !ok {
		name = "unknown cuBLAS status"
	}
	return fmt.Sprintf("cuda: cuBLAS %s: %s (%d)", e.Call, name, e.Status)
}

// cublasCheck turns a cublasStatus_t into an error naming the call.
func cublasCheck(call string, status int32) error {
	if status == cublasStatusSuccess {
		return nil
	}
	return &cublasError{Call: call, Status: status}
}

// cublasLib holds cuBLAS's functions, bound by purego (the _v2 names are
// the real symbols behind cublas_v2.h's macros).
type cublasLib struct {
	create       func(handle *uintptr) int32
	destroy      func(handle uintptr) int32
	setStream    func(handle, stream uintptr) int32
	setWorkspace func(handle uintptr, ws uint64, size uintptr) int32
	setMathMode  func(handle uintptr, mode int32) int32
	getVersion   func(handle uintptr, v *int32) int32
	gemmEx       func(handle uintptr, transA, transB int32, m, n, k int32,
		alpha *float32, a uint64, aType, lda int32,
		b uint64, bType, ldb int32,
		beta *float32, c uint64, cType, ldc int32,
		compute, algo int32) int32
}

// cublasState is a started cuBLAS: its handle on the backend's stream and
// its workspace.
type cublasState struct {
	lib       *cublasLib
	handle    uintptr
	workspace uint64
	path      string // the file loaded
	version   int    // cublasGetVersion: major·10000 + minor·100 + patch (CUDA 12.x and newer)
	// alpha and beta are the GEMM's scalars (1, 0), kept here so that the
	// pointers passed stay valid through the call.
	alpha, beta float32
	// gemms counts the GEMMs sent, for tests that check the path ran.
	gemms int
}

// pythonSitePackages are the places pip puts packages, under which NVIDIA's
// wheels keep libcublas (nvidia/cublas/lib; CUDA 13's nvidia/cu13/lib).
// "~" is $HOME.
var pythonSitePackages = []string{
	"/usr/local/lib/python3*/dist-packages",
	"/usr/lib/python3*/dist-packages",
	"/usr/local/lib/python3*/site-packages",
	"/usr/lib/python3*/site-packages",
	"~/.local/lib/python3*/site-packages",
}

// cublasDirs are the toolkit's library directories, searched after the
// dynamic linker's own search.
var cublasDirs = []string{
	"/usr/local/cuda/lib64",
	"/usr/local/cuda/targets/x86_64-linux/lib",
}

// cublasSonames are the library names handed to dlopen's own search
// (LD_LIBRARY_PATH, ldconfig's cache), newest first.
var cublasSonames = []string{"libcublas.so.13", "libcublas.so.12"}

// cublasCandidates lists the files to try, in order: $LLAMAGO_CUBLAS, the
// sonames through the dynamic linker's search, then the toolkit's
// directories and Python wheels' directories as they exist under root ("/"
// in use; a test's temporary tree in tests). getenv reads the environment.
// It returns nil when $LLAMAGO_CUDA_CUBLAS is "0". A pure function of its
// arguments and the files under root, so that the search can be tested
// without loading anything.
func cublasCandidates(getenv func(string) string, root string) []string {
	if getenv(envCUBLASSwitch) == "0" {
		return nil
	}
	var out []string
	if p := getenv(envCUBLASFile); p != "" {
		out = append(out, p)
	}
	out = append(out, cublasSonames...)
	dirs := slices.Clone(cublasDirs)
	home := getenv("HOME")
	for _, site := range pythonSitePackages {
		if rest, ok := strings.CutPrefix(site, "~"); ok {
			if home == "" {
				continue
			}
			site = filepath.Join(home, rest)
		}
		dirs = append(dirs, site+"/nvidia/cublas/lib", site+"/nvidia/cu13/lib")
	}
	seen := map[string]bool{}
	for _, dir := range dirs {
		// Glob errors only for malformed patterns, which these are not.
		found, _ := filepath.Glob(filepath.Join(root, dir, "libcublas.so.1[23]"))
		// Newest major version first; several Python versions in the
		// order Glob sorts them.
		slices.SortStableFunc(found, func(a, b string) int {
			return strings.Compare(filepath.Base(b), filepath.Base(a))
		})
		for _, f := range found {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// openCUBLAS tries the candidates in order and binds the first library
// that loads with every function. It returns the library, the name it was
// loaded by, and, when none loaded, an error listing each try.
func openCUBLAS(candidates []string) (*cublasLib, string, error) {
	if len(candidates) == 0 {
		return nil, "", fmt.Errorf("cuda: cuBLAS turned off ($%s=0)", envCUBLASSwitch)
	}
	var tries []string
	for _, c := range candidates {
		lib, err := bindCUBLAS(c)
		if err == nil {
			return lib, c, nil
		}
		tries = append(tries, err.Error())
	}
	return nil, "", fmt.Errorf("cuda: no cuBLAS loaded: %s", strings.Join(tries, "; "))
}

// cublasSymbol is a function pointer of cublasLib and its symbol.
type cublasSymbol struct {
	fp   any
	name string
}

// symbols lists lib's functions with their symbols' names.
func (lib *cublasLib) symbols() []cublasSymbol {
	return []cublasSymbol{
		{&lib.create, "cublasCreate_v2"},
		{&lib.destroy, "cublasDestroy_v2"},
		{&lib.setStream, "cublasSetStream_v2"},
		{&lib.setWorkspace, "cublasSetWorkspace_v2"},
		{&lib.setMathMode, "cublasSetMathMode"},
		{&lib.getVersion, "cublasGetVersion_v2"},
		{&lib.gemmEx, "cublasGemmEx"},
	}
}

// bindCUBLAS opens one libcublas file and binds the functions.
func bindCUBLAS(path string) (*cublasLib, error) {
	if strings.Contains(path, "/") {
		// Wheels' libcublas may not find its companion libcublasLt by
		// itself (their directory is not on the linker's path): load it
		// from the same directory first, so that libcublas's dependency
		// on that soname is already satisfied. Failing is fine: the
		// library may find it on its own.
		lt := filepath.Join(filepath.Dir(path), strings.Replace(filepath.Base(path), "libcublas.", "libcublasLt.", 1))
		if _, err := os.Stat(lt); err == nil {
			purego.Dlopen(lt, purego.RTLD_NOW|purego.RTLD_GLOBAL) //nolint:errcheck // optional, see above
		}
	}
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	lib := &cublasLib{}
	for _, s := range lib.symbols() {
		sym, err := purego.Dlsym(h, s.name)
		if err != nil {
			purego.Dlclose(h) //nolint:errcheck // giving up on this file anyway
			return nil, fmt.Errorf("%s has no %s: %v", path, s.name, err)
		}
		purego.RegisterFunc(s.fp, sym)
	}
	return lib, nil
}

// mappedFile returns the path of the first file mapped into the process
// (maps is /proc/self/maps) whose base name starts with prefix, or "".
// It tells which file a soname loaded through the linker's search is.
func mappedFile(maps, prefix string) string {
	for line := range strings.Lines(maps) {
		i := strings.IndexByte(line, '/')
		if i < 0 {
			continue
		}
		p := strings.TrimSpace(line[i:])
		if strings.HasPrefix(filepath.Base(p), prefix) {
			return p
		}
	}
	return ""
}

// startCUBLAS loads cuBLAS and creates its handle on the backend's stream
// with a fixed workspace. The caller holds the OS thread with the context
// current. A failure leaves the backend without cuBLAS (b.blasNote says
// why); it is not an error of New.
func (b *Backend) startCUBLAS() {
	// The workspace's allocation locks the thread once more (alloc's
	// makeCurrent) and marks the backend locked: undo both on return, as
	// an operation's end does, so that New leaves the backend unlocked.
	defer b.leave()
	lib, name, err := openCUBLAS(cublasCandidates(os.Getenv, "/"))
	if err != nil {
		b.blasNote = err.Error()
		return
	}
	s := &cublasState{lib: lib, path: name, alpha: 1, beta: 0}
	if maps, err := os.ReadFile("/proc/self/maps"); err == nil {
		if p := mappedFile(string(maps), "libcublas.so"); p != "" {
			s.path = p
		}
	}
	if err := cublasCheck("cublasCreate", lib.create(&s.handle)); err != nil {
		b.blasNote = fmt.Sprintf("%s loaded but: %v", s.path, err)
		return
	}
	var v int32
	if lib.getVersion(s.handle, &v) == cublasStatusSuccess {
		s.version = int(v)
	}
	ws, err := b.alloc(cublasWorkspaceBytes)
	if err == nil {
		s.workspace = ws
		// The stream first: setting it resets the workspace to cuBLAS's
		// own pool.
		err = cublasCheck("cublasSetStream", lib.setStream(s.handle, b.stream))
	}
	if err == nil {
		err = cublasCheck("cublasSetWorkspace", lib.setWorkspace(s.handle, ws, cublasWorkspaceBytes))
	}
	if err == nil {
		err = cublasCheck("cublasSetMathMode", lib.setMathMode(s.handle, cublasDefaultMath))
	}
	if err != nil {
		lib.destroy(s.handle)
		if s.workspace != 0 {
			delete(b.allocs, s.workspace)
			b.drv.cuMemFree(s.workspace)
		}
		b.blasNote = fmt.Sprintf("%s loaded but: %v", s.path, err)
		return
	}
	b.blas = s
	b.blasNote = s.describe()
}

// describe names the library loaded and its version.
func (s *cublasState) describe() string {
	if s.version == 0 {
		return s.path
	}
	return fmt.Sprintf("%s (version %d.%d.%d)", s.path, s.version/10000, s.version/100%100, s.version%100)
}

// stopCUBLAS destroys the handle (Close, with the context current and the
// stream finished; the workspace is freed with the other allocations).
func (b *Backend) stopCUBLAS() error {
	if b.blas == nil {
		return nil
	}
	err := cublasCheck("cublasDestroy", b.blas.lib.destroy(b.blas.handle))
	b.blas = nil
	return err
}

// CUBLAS returns the path of the cuBLAS library the backend computes F16
// prefill products with, or "" when it uses its own kernels only (no
// library found, $LLAMAGO_CUDA_CUBLAS=0, Options.NoCUBLAS, CPU-order mode).
func (b *Backend) CUBLAS() string {
	if b.blas == nil {
		return ""
	}
	return b.blas.path
}

// CUBLASStatus says in words whether cuBLAS is used: the library and its
// version, or why not.
func (b *Backend) CUBLASStatus() string {
	if b.blas == nil {
		return "off: " + b.blasNote
	}
	return b.blasNote
}

// Describe is one line about the backend: the GPU, programmatic dependent
// launch, cuBLAS (what `llamago bench` prints before its table).
func (b *Backend) Describe() string {
	i := b.info
	pdl := "off"
	if b.pdl {
		pdl = "on"
	}
	return fmt.Sprintf("cuda: %s (compute %d.%d, %d multiprocessors, driver %d.%d); programmatic dependent launch %s; cuBLAS %s",
		i.Name, i.ComputeMajor, i.ComputeMinor, i.Multiprocessors, i.DriverVersion/1000, i.DriverVersion%1000/10, pdl, b.CUBLASStatus())
}

// gemmShape is a column-major GEMM's operations, sizes and leading
// dimensions: C (m×n) = op(A) (m×k) · op(B) (k×n).
type gemmShape struct {
	transA, transB int32
	m, n, k        int32
	lda, ldb, ldc  int32
}

// productGemm is the GEMM that computes the row-major product
// Y[ntok][rows] = X[ntok][cols] · W[rows][cols]ᵀ (W's rows stride values
// apart, X's and Y's dense) in cuBLAS's column-major terms: row-major W is
// a column-major cols×rows matrix with leading dimension stride, which
// transposed is rows×cols (A); row-major X is column-major cols×ntok (B);
// and column-major C, rows×ntok with leading dimension rows, is row-major
// Y.
func productGemm(rows, cols, stride, ntok int) gemmShape {
	return gemmShape{
		transA: cublasOpT, transB: cublasOpN,
		m: int32(rows), n: int32(ntok), k: int32(cols),
		lda: int32(stride), ldb: int32(cols), ldc: int32(rows),
	}
}

// gemmF16 computes dst = x·wᵀ for F16 weights with cuBLAS when it is loaded
// and x has at least cublasMinTokens rows, reporting whether it did. xh
// holds x rounded to F16 halves (ntok rows of w.cols). The call goes
// straight to the stream, so the launch queue is sent first; the launches
// queued after it start a new queue, whose first launch is an ordinary one
// (never a programmatic dependent launch, which would overlap the GEMM).
// No stream capture is open here: captures happen inside flush only.
func (b *Backend) gemmF16(dst *mat, xh uint64, w *weight, ntok int) bool {
	s := b.blas
	if s == nil || ntok < cublasMinTokens {
		return false
	}
	const op = "MatMul"
	b.current(op)
	b.flush(op)
	b.idle = false
	g := productGemm(w.rows, w.cols, w.rowBytes/2, ntok)
	st := s.lib.gemmEx(s.handle, g.transA, g.transB, g.m, g.n, g.k,
		&s.alpha, w.ptr, cudaR16F, g.lda,
		xh, cudaR16F, g.ldb,
		&s.beta, dst.ptr, cudaR32F, g.ldc,
		cublasCompute32F, cublasGemmDefault)
	runtime.KeepAlive(s)
	b.must(op, cublasCheck("cublasGemmEx", st))
	s.gemms++
	if b.sync {
		b.must(op, b.drv.check("cuStreamSynchronize", b.drv.cuStreamSynchronize(b.stream)))
	}
	return true
}
