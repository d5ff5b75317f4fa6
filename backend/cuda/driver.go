package cuda

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/ebitengine/purego"
)

// libName is the CUDA driver library's soname; the driver alone is needed,
// no toolkit.
const libName = "libcuda.so.1"

// result is a CUresult; 0 is CUDA_SUCCESS.
type result int32

// Driver API values used here.
const (
	errNoDevice            result = 100 // CUDA_ERROR_NO_DEVICE
	jitErrorLogBuffer             = 5   // CU_JIT_ERROR_LOG_BUFFER
	jitErrorLogBufferSize         = 6   // CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES
	jitErrorLogCap                = 16 << 10
	devAttrMultiprocessors        = 16 // CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT
	devAttrComputeMajor           = 75 // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
	devAttrComputeMinor           = 76 // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
	captureModeThreadLocal        = 1  // CU_STREAM_CAPTURE_MODE_THREAD_LOCAL
	streamNonBlocking             = 1  // CU_STREAM_NON_BLOCKING
	funcAttrCarveout              = 9  // CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT (percent)
	launchAttrProgrammatic        = 6  // CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION
)

// launchConfig is CUlaunchConfig, cuLaunchKernelEx's launch description
// (64-bit layout: seven 32-bit sizes, then the stream at offset 32).
type launchConfig struct {
	gridX, gridY, gridZ    uint32
	blockX, blockY, blockZ uint32
	sharedMem              uint32
	_                      uint32
	stream                 uintptr
	attrs                  *launchAttr
	numAttrs               uint32
	_                      uint32
}

// launchAttr is CUlaunchAttribute: an id, padding to 8 bytes, and the
// 64-byte value union (an int flag at its start for the attribute used
// here).
type launchAttr struct {
	id    uint32
	_     uint32
	value [16]uint32
}

// driver holds the driver API functions, bound by purego from libcuda.
// The _v2 names are the real symbols behind the header's macros.
type driver struct {
	cuInit                    func(flags uint32) result
	cuDriverGetVersion        func(v *int32) result
	cuDeviceGetCount          func(n *int32) result
	cuDeviceGet               func(dev *int32, ordinal int32) result
	cuDeviceGetName           func(name *byte, n int32, dev int32) result
	cuDeviceGetAttribute      func(v *int32, attr int32, dev int32) result
	cuDeviceTotalMem          func(bytes *uint64, dev int32) result
	cuDevicePrimaryCtxRetain  func(ctx *uintptr, dev int32) result
	cuDevicePrimaryCtxRelease func(dev int32) result
	cuCtxSetCurrent           func(ctx uintptr) result
	cuModuleLoadDataEx        func(mod *uintptr, image unsafe.Pointer, n uint32, opts *int32, vals *uintptr) result
	cuModuleUnload            func(mod uintptr) result
	cuModuleGetFunction       func(fn *uintptr, mod uintptr, name *byte) result
	cuModuleGetGlobal         func(ptr *uint64, bytes *uintptr, mod uintptr, name *byte) result
	cuFuncSetAttribute        func(fn uintptr, attr int32, v int32) result
	cuOccupancyMaxBlocks      func(n *int32, fn uintptr, blockSize int32, dynamicShared uintptr) result
	cuMemAlloc                func(ptr *uint64, size uintptr) result
	cuMemFree                 func(ptr uint64) result
	cuMemsetD8                func(ptr uint64, v uint8, n uintptr) result
	cuMemcpyHtoD              func(dst uint64, src unsafe.Pointer, n uintptr) result
	cuMemcpyDtoH              func(dst unsafe.Pointer, src uint64, n uintptr) result
	cuMemcpyHtoDAsync         func(dst uint64, src unsafe.Pointer, n uintptr, s uintptr) result
	cuMemcpyDtoHAsync         func(dst unsafe.Pointer, src uint64, n uintptr, s uintptr) result
	cuMemsetD32Async          func(ptr uint64, v uint32, n uintptr, s uintptr) result
	cuMemAllocHost            func(p *unsafe.Pointer, size uintptr) result
	cuMemFreeHost             func(p unsafe.Pointer) result
	cuStreamCreate            func(s *uintptr, flags uint32) result
	cuStreamDestroy           func(s uintptr) result
	cuStreamSynchronize       func(s uintptr) result
	cuLaunchKernel            func(fn uintptr, gx, gy, gz, bx, by, bz, shmem uint32, stream uintptr, params *unsafe.Pointer, extra uintptr) result
	cuStreamBeginCapture      func(s uintptr, mode int32) result
	cuStreamEndCapture        func(s uintptr, graph *uintptr) result
	cuGraphInstantiate        func(exec *uintptr, graph uintptr, flags uint64) result
	cuGraphLaunch             func(exec uintptr, s uintptr) result
	cuGraphExecDestroy        func(exec uintptr) result
	cuGraphDestroy            func(graph uintptr) result
	cuGetErrorName            func(r result, s **byte) result
	cuGetErrorString          func(r result, s **byte) result

	// cuLaunchKernelEx (CUDA 11.8 and newer) is nil when the driver lacks
	// it: launches then go without programmatic dependent launch.
	cuLaunchKernelEx func(cfg *launchConfig, fn uintptr, params *unsafe.Pointer, extra uintptr) result
}

// ErrNoDriver is wrapped by New's error when libcuda cannot be loaded:
// the machine has no NVIDIA driver.
var ErrNoDriver = errors.New("cuda: " + libName + " not found: this machine has no NVIDIA driver")

// loadDriver opens libcuda and binds the functions.
func loadDriver() (*driver, error) {
	h, err := purego.Dlopen(libName, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNoDriver, err)
	}
	d := &driver{}
	syms := []struct {
		fp   any
		name string
	}{
		{&d.cuInit, "cuInit"},
		{&d.cuDriverGetVersion, "cuDriverGetVersion"},
		{&d.cuDeviceGetCount, "cuDeviceGetCount"},
		{&d.cuDeviceGet, "cuDeviceGet"},
		{&d.cuDeviceGetName, "cuDeviceGetName"},
		{&d.cuDeviceGetAttribute, "cuDeviceGetAttribute"},
		{&d.cuDeviceTotalMem, "cuDeviceTotalMem_v2"},
		{&d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"},
		{&d.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"},
		{&d.cuCtxSetCurrent, "cuCtxSetCurrent"},
		{&d.cuModuleLoadDataEx, "cuModuleLoadDataEx"},
		{&d.cuModuleUnload, "cuModuleUnload"},
		{&d.cuModuleGetFunction, "cuModuleGetFunction"},
		{&d.cuModuleGetGlobal, "cuModuleGetGlobal_v2"},
		{&d.cuFuncSetAttribute, "cuFuncSetAttribute"},
		{&d.cuOccupancyMaxBlocks, "cuOccupancyMaxActiveBlocksPerMultiprocessor"},
		{&d.cuMemAlloc, "cuMemAlloc_v2"},
		{&d.cuMemFree, "cuMemFree_v2"},
		{&d.cuMemsetD8, "cuMemsetD8_v2"},
		{&d.cuMemcpyHtoD, "cuMemcpyHtoD_v2"},
		{&d.cuMemcpyDtoH, "cuMemcpyDtoH_v2"},
		{&d.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"},
		{&d.cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"},
		{&d.cuMemsetD32Async, "cuMemsetD32Async"},
		{&d.cuMemAllocHost, "cuMemAllocHost_v2"},
		{&d.cuMemFreeHost, "cuMemFreeHost"},
		{&d.cuStreamCreate, "cuStreamCreate"},
		{&d.cuStreamDestroy, "cuStreamDestroy_v2"},
		{&d.cuStreamSynchronize, "cuStreamSynchronize"},
		{&d.cuLaunchKernel, "cuLaunchKernel"},
		{&d.cuStreamBeginCapture, "cuStreamBeginCapture_v2"},
		{&d.cuStreamEndCapture, "cuStreamEndCapture"},
		{&d.cuGraphInstantiate, "cuGraphInstantiateWithFlags"},
		{&d.cuGraphLaunch, "cuGraphLaunch"},
		{&d.cuGraphExecDestroy, "cuGraphExecDestroy"},
		{&d.cuGraphDestroy, "cuGraphDestroy"},
		{&d.cuGetErrorName, "cuGetErrorName"},
		{&d.cuGetErrorString, "cuGetErrorString"},
	}
	for _, s := range syms {
		sym, err := purego.Dlsym(h, s.name)
		if err != nil {
			return nil, fmt.Errorf("cuda: %s has no %s (driver too old?): %w", libName, s.name, err)
		}
		purego.RegisterFunc(s.fp, sym)
	}
	if sym, err := purego.Dlsym(h, "cuLaunchKernelEx"); err == nil {
		purego.RegisterFunc(&d.cuLaunchKernelEx, sym)
	}
	return d, nil
}

// Error is a failed driver call.
type Error struct {
	Call   string
	Result int32
	Name   string // CUDA_ERROR_…
	Text   string // the driver's description
}

func (e *Error) Error() string {
	return fmt.Sprintf("cuda: %s: %s (%d): %s", e.Call, e.Name, e.Result, e.Text)
}

// check turns a CUresult into an error naming the call.
func (d *driver) check(call string, r result) error {
	if r == 0 {
		return nil
	}
	e := &Error{Call: call, Result: int32(r), Name: "CUDA_ERROR_UNKNOWN", Text: "unknown error"}
	var s *byte
	if d.cuGetErrorName(r, &s) == 0 && s != nil {
		e.Name = goString(s)
	}
	if d.cuGetErrorString(r, &s) == 0 && s != nil {
		e.Text = goString(s)
	}
	return e
}

// goString copies a NUL-terminated C string.
func goString(p *byte) string {
	var n int
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}
