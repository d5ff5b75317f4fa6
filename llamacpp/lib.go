// Package llamacpp is a harness to llama.cpp's own shared libraries (the
// prebuilt ones of the npm package node-llama-cpp), called from Go without
// cgo through purego. It exists to verify llamago against llama.cpp
// (quantizers, tokenizer, logits, intermediate tensors) and to benchmark
// against it; the inference engine never uses it.
package llamacpp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Library file names inside the bins folder of node-llama-cpp 3.21.1.
const (
	libGGMLBase = "libggml-base.so"
	libGGML     = "libggml.v0.4.0.so"
	libLlama    = "libllama.v0.4.0.so"
)

// binsSubdir is where node-llama-cpp keeps the CPU-only Linux x64 build,
// relative to a folder that holds node_modules.
var binsSubdir = filepath.Join("node_modules", "@node-llama-cpp", "linux-x64", "bins", "linux-x64")

// OpenOptions tunes how the libraries are loaded.
type OpenOptions struct {
	// CPUVariant, when set, loads only libggml-cpu-<CPUVariant>.so (for
	// example "icelake" for the AVX-512 build) instead of letting ggml
	// pick the best variant for this CPU (on AMX machines:
	// "sapphirerapids").
	CPUVariant string
}

// Lib is the loaded set of llama.cpp libraries. There is at most one per
// process; it is safe for concurrent use except where a method says
// otherwise.
type Lib struct {
	dir  string
	opts OpenOptions
	log  logBuffer
	c    cFuncs

	evalMu      sync.Mutex
	evalNext    uintptr
	evalTargets map[uintptr]*Context
	evalCB      uintptr // the one C eval callback of the process

	toFloatMu  sync.Mutex
	toFloatFns map[uintptr]toFloatFunc
}

// process holds the one Lib of the process. dlopen with RTLD_GLOBAL and
// purego callbacks cannot be undone, and llama.cpp keeps its backend
// registry and log hook in process-wide globals, so a second, independent
// load is impossible: this is the only package-level state, and it records
// the fact that the libraries are in the address space.
var process struct {
	mu  sync.Mutex
	lib *Lib
	err error
}

// Open loads llama.cpp's libraries from libDir (the folder that holds
// libllama.v0.4.0.so and the libggml-*.so files) with the CPU backend ggml
// picks for this machine. Later calls return the same Lib; asking for a
// different folder then fails.
func Open(libDir string) (*Lib, error) {
	return OpenWith(libDir, OpenOptions{})
}

// OpenWith is Open with options. The options of the first successful call
// hold for the life of the process.
func OpenWith(libDir string, opts OpenOptions) (*Lib, error) {
	if libDir == "" {
		return nil, errors.New("llamacpp: no library folder given (set LLAMAGO_LLAMACPP_LIB or install node-llama-cpp)")
	}
	abs, err := filepath.Abs(libDir)
	if err != nil {
		return nil, fmt.Errorf("llamacpp: library folder %q: %w", libDir, err)
	}
	process.mu.Lock()
	defer process.mu.Unlock()
	if process.lib != nil {
		if process.lib.dir != abs || process.lib.opts != opts {
			return nil, fmt.Errorf("llamacpp: already loaded from %s with %+v; cannot load %s with %+v in the same process",
				process.lib.dir, process.lib.opts, abs, opts)
		}
		return process.lib, nil
	}
	if process.err != nil {
		// A failed dlopen may have left part of the libraries mapped; a
		// retry would mix states, so the first failure stands.
		return nil, process.err
	}
	lib, err := load(abs, opts)
	if err != nil {
		process.err = err
		return nil, err
	}
	process.lib = lib
	return lib, nil
}

func load(dir string, opts OpenOptions) (*Lib, error) {
	for _, name := range []string{libGGMLBase, libGGML, libLlama} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return nil, fmt.Errorf("llamacpp: %w", err)
		}
	}
	var handles []uintptr
	// Dependencies first; RTLD_GLOBAL lets the CPU backend, loaded later by
	// ggml itself, resolve its symbols against libggml-base.
	for _, name := range []string{libGGMLBase, libGGML, libLlama} {
		h, err := purego.Dlopen(filepath.Join(dir, name), purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			return nil, fmt.Errorf("llamacpp: dlopen %s: %w", name, err)
		}
		handles = append(handles, h)
	}
	lib := &Lib{dir: dir, opts: opts, evalTargets: map[uintptr]*Context{}, toFloatFns: map[uintptr]toFloatFunc{}}
	if err := lib.c.register(handles); err != nil {
		return nil, err
	}

	// Route llama.cpp's and ggml's log lines into a buffer before anything
	// can print, so tests stay quiet and errors can quote the log.
	lib.c.llamaLogSet(purego.NewCallback(lib.onLog), 0)
	lib.evalCB = purego.NewCallback(lib.onEval)

	if opts.CPUVariant != "" {
		if strings.ContainsAny(opts.CPUVariant, "/\\") {
			return nil, fmt.Errorf("llamacpp: CPU variant %q is not a plain name", opts.CPUVariant)
		}
		p := filepath.Join(dir, "libggml-cpu-"+opts.CPUVariant+".so")
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("llamacpp: CPU variant %q: %w", opts.CPUVariant, err)
		}
		if reg := lib.c.ggmlBackendLoad(p); reg == 0 {
			return nil, fmt.Errorf("llamacpp: loading %s failed (does this CPU support it?): %s", p, lib.log.tail(5))
		}
	} else {
		lib.c.ggmlBackendLoadAllFromPath(dir)
	}
	if lib.c.ggmlBackendDevCount() == 0 {
		return nil, fmt.Errorf("llamacpp: no ggml backend device after loading from %s: %s", dir, lib.log.tail(5))
	}
	lib.c.llamaBackendInit()
	return lib, nil
}

// Dir is the folder the libraries were loaded from.
func (l *Lib) Dir() string { return l.dir }

// MirroredCPUVariant is the llama.cpp CPU library (libggml-cpu-zen4.so,
// AVX-512) whose float arithmetic llamago's CPU backend and kernels
// reproduce bit for bit (docs/DESIGN.md, "Bit-exactness with llama.cpp's
// CPU build"). On a CPU without AVX-512 llama.cpp loads another build
// (haswell, AVX2), whose sums run in other orders: the two then agree
// only to rounding.
const MirroredCPUVariant = "zen4"

// RunsMirroredCPUVariant reports whether llama.cpp computes on its
// MirroredCPUVariant build in this process, and which builds it loaded.
func (l *Lib) RunsMirroredCPUVariant() (bool, []string, error) {
	loaded, err := l.LoadedCPUVariants()
	if err != nil {
		return false, nil, err
	}
	return slices.Contains(loaded, MirroredCPUVariant), loaded, nil
}

// LoadedCPUVariants lists the libggml-cpu-<variant>.so files mapped into
// the process (normally one), by variant name, read from /proc/self/maps.
func (l *Lib) LoadedCPUVariants() ([]string, error) {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil, fmt.Errorf("llamacpp: reading loaded libraries: %w", err)
	}
	seen := map[string]bool{}
	var out []string
	for line := range strings.SplitSeq(string(maps), "\n") {
		i := strings.Index(line, "libggml-cpu-")
		if i < 0 || !strings.HasSuffix(line, ".so") {
			continue
		}
		v := strings.TrimSuffix(line[i+len("libggml-cpu-"):], ".so")
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out, nil
}

// RecentLog returns up to n of the latest lines llama.cpp and ggml logged
// (all levels), oldest first.
func (l *Lib) RecentLog(n int) []string { return l.log.last(n) }

// DefaultLibDir finds llama.cpp's libraries: $LLAMAGO_LLAMACPP_LIB if set,
// else the first node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
// holding libllama found walking up from the working directory, then from
// the executable's folder. It returns "" when there is none.
func DefaultLibDir() string {
	if d := os.Getenv("LLAMAGO_LLAMACPP_LIB"); d != "" {
		return d
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, s := range starts {
		if d := findUpward(s); d != "" {
			return d
		}
	}
	return ""
}

func findUpward(start string) string {
	dir := filepath.Clean(start)
	for {
		cand := filepath.Join(dir, binsSubdir)
		if _, err := os.Stat(filepath.Join(cand, libLlama)); err == nil {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// cString reads a NUL-terminated C string (nil gives "").
func cString(p *byte) string {
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// cStringN reads a C char array of at most max bytes, stopping at NUL.
func cStringN(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
