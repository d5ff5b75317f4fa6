package cuda

import (
	_ "embed"
	"fmt"
	"os"
	"strings"
)

// embeddedPTX is kernels/llamago.cu compiled by scripts/build-ptx.sh for
// compute_80 (Ampere and newer), embeddedPTX90 the same sources for
// compute_90 (Hopper), whose kernels also wait for and release their
// neighbours in programmatic dependent launch (see pdl in cuda.go). The
// first line of each records the SHA-256 of the sources it was made
// from, which a test compares with the sources in the repository.
//
//go:embed kernels/llamago.ptx
var embeddedPTX []byte

//go:embed kernels/llamago_sm90.ptx
var embeddedPTX90 []byte

// ptxEnv names the environment variable that replaces the embedded PTX
// with a file, for kernel development on a machine with nvcc.
const ptxEnv = "LLAMAGO_CUDA_PTX"

// kernelPTX is the PTX to load: given, from $LLAMAGO_CUDA_PTX, or the
// embedded one for a GPU of compute capability major.x.
func kernelPTX(given []byte, major int) ([]byte, error) {
	if given != nil {
		return given, nil
	}
	if path := os.Getenv(ptxEnv); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("cuda: $%s: %w", ptxEnv, err)
		}
		return b, nil
	}
	if major >= 9 {
		return embeddedPTX90, nil
	}
	return embeddedPTX, nil
}

// ptxTarget returns the compute capability a PTX module targets (its
// ".target sm_XY" directive) as 10·X + Y, 0 when there is none.
func ptxTarget(ptx []byte) int {
	for line := range strings.Lines(string(ptx)) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), ".target sm_")
		if !ok {
			continue
		}
		n := 0
		for _, c := range rest {
			if c < '0' || c > '9' {
				break
			}
			n = 10*n + int(c-'0')
		}
		return n
	}
	return 0
}

// kernelSet holds the loaded kernels' function handles.
type kernelSet struct {
	mm, mv                        [numGPUTypes]uintptr // products: tiles of tokens, one token
	mvq                           [numGPUTypes]uintptr // one token, int8 (F16: F16) activations, up to 3 matrices
	mvqGLU                        [numGPUTypes]uintptr // one token: gate and up products and SwiGLU (quantized types, F16)
	mvqnF16, mvqnGLUF16           uintptr              // one token, F16, the RMSNorm before folded in (foldNorm): up to 3 matrices; gate/up/SwiGLU
	mmq                           [numGPUTypes]uintptr // several tokens on the tensor cores (quantized types)
	mmhF16                        uintptr              // several tokens on the tensor cores (F16)
	actF16, actQ8_0, actQ8_K      uintptr
	actQ8_0Int, actQ8_KInt        uintptr
	actF16Bits                    uintptr
	getRows, copyRows             uintptr
	rmsNorm, add, swiglu, rope    uintptr
	storeKV, attention            uintptr
	attentionDec64                uintptr // decode: heads of 64, F16 cache, rotation fused, no probes
	attentionTC64, attentionTC128 uintptr // prefill, F16 cache, tensor cores: heads of ≤ 64, ≤ 128 values
	argmax                        uintptr // greedy sampling's pick per row of logits
	// split-K decode attention at long contexts: per-chunk scores and
	// sums, per-chunk weighted values, their merge (see splitAttention)
	attentionSplit, attentionSplitV, attentionCombine uintptr
}

// load finds every kernel in the module by its extern "C" name.
func (k *kernelSet) load(d *driver, mod uintptr) error {
	fns := []struct {
		dst  *uintptr
		name string
	}{
		{&k.mm[gpuF32], "mm_f32"},
		{&k.mm[gpuF16], "mm_f16"},
		{&k.mm[gpuQ4_0], "mm_q4_0"},
		{&k.mm[gpuQ8_0], "mm_q8_0"},
		{&k.mm[gpuQ4_K], "mm_q4_k"},
		{&k.mm[gpuQ6_K], "mm_q6_k"},
		{&k.mv[gpuF32], "mv_f32"},
		{&k.mv[gpuF16], "mv_f16"},
		{&k.mv[gpuQ4_0], "mv_q4_0"},
		{&k.mv[gpuQ8_0], "mv_q8_0"},
		{&k.mv[gpuQ4_K], "mv_q4_k"},
		{&k.mv[gpuQ6_K], "mv_q6_k"},
		{&k.mvq[gpuQ4_0], "mvq_q4_0"},
		{&k.mvq[gpuQ8_0], "mvq_q8_0"},
		{&k.mvq[gpuF16], "mvq_f16"},
		{&k.mvq[gpuQ4_K], "mvq_q4_k"},
		{&k.mvq[gpuQ6_K], "mvq_q6_k"},
		{&k.mvqGLU[gpuQ4_0], "mvq_glu_q4_0"},
		{&k.mvqGLU[gpuQ8_0], "mvq_glu_q8_0"},
		{&k.mvqGLU[gpuF16], "mvq_glu_f16"},
		{&k.mvqGLU[gpuQ4_K], "mvq_glu_q4_k"},
		{&k.mvqGLU[gpuQ6_K], "mvq_glu_q6_k"},
		{&k.mvqnF16, "mvqn_f16"},
		{&k.mvqnGLUF16, "mvqn_glu_f16"},
		{&k.mmq[gpuQ4_0], "mmq_q4_0"},
		{&k.mmq[gpuQ8_0], "mmq_q8_0"},
		{&k.mmq[gpuQ4_K], "mmq_q4_k"},
		{&k.mmq[gpuQ6_K], "mmq_q6_k"},
		{&k.mmhF16, "mmh_f16"},
		{&k.actQ8_0Int, "act_q8_0_int"},
		{&k.actQ8_KInt, "act_q8_k_int"},
		{&k.actF16Bits, "act_f16_bits"},
		{&k.actF16, "act_f16"},
		{&k.actQ8_0, "act_q8_0"},
		{&k.actQ8_K, "act_q8_k"},
		{&k.getRows, "get_rows"},
		{&k.copyRows, "copy_rows"},
		{&k.rmsNorm, "rms_norm"},
		{&k.add, "add"},
		{&k.swiglu, "swiglu"},
		{&k.rope, "rope"},
		{&k.storeKV, "store_kv"},
		{&k.attention, "attention"},
		{&k.attentionDec64, "attention_dec64"},
		{&k.attentionTC64, "attention_tc64"},
		{&k.attentionTC128, "attention_tc128"},
		{&k.argmax, "argmax"},
		{&k.attentionSplit, "attention_split"},
		{&k.attentionSplitV, "attention_split_v"},
		{&k.attentionCombine, "attention_combine"},
	}
	for _, f := range fns {
		name := append([]byte(f.name), 0)
		if err := d.check("cuModuleGetFunction("+f.name+")", d.cuModuleGetFunction(f.dst, mod, &name[0])); err != nil {
			return fmt.Errorf("%w (is the PTX older than the Go code? run scripts/build-ptx.sh)", err)
		}
	}
	// The tensor-core kernels hold their tiles in shared memory: prefer
	// the largest shared-memory carveout of the L1, so that shared memory
	// does not limit how many of their blocks a multiprocessor holds.
	tiled := []uintptr{k.mmq[gpuQ4_0], k.mmq[gpuQ8_0], k.mmq[gpuQ4_K], k.mmq[gpuQ6_K], k.mmhF16, k.attentionTC64, k.attentionTC128}
	for _, fn := range tiled {
		if err := d.check("cuFuncSetAttribute(carveout)", d.cuFuncSetAttribute(fn, funcAttrCarveout, 100)); err != nil {
			return err
		}
	}
	return nil
}

// ptxDigestPrefix starts the first line of the PTX that build-ptx.sh
// writes; the SHA-256 of the kernel sources follows it.
const ptxDigestPrefix = "// llamago-sources-sha256: "

// ptxSourcesDigest returns the sources digest recorded in a PTX file's
// first line, or false when the line is missing.
func ptxSourcesDigest(ptx []byte) (string, bool) {
	line, _, _ := strings.Cut(string(ptx), "\n")
	digest, ok := strings.CutPrefix(line, ptxDigestPrefix)
	digest = strings.TrimSpace(digest)
	if !ok || len(digest) != 64 || strings.Trim(digest, "0123456789abcdef") != "" {
		return "", false
	}
	return digest, true
}
