package cuda

import (
	"strings"
	"testing"
)

// TestCPUOrderPTXMatchesSources checks that the committed CPU-order PTX
// was made from the committed sources (kernels/cpuorder/*.cu and *.cuh,
// concatenated in byte order of their names, as
// scripts/build-cpuorder-ptx.sh hashes them) and has every kernel the Go
// code loads. It needs no GPU and runs in CI.
func TestCPUOrderPTXMatchesSources(t *testing.T) {
	want := sourcesDigest(t, "kernels/cpuorder")
	got, ok := ptxSourcesDigest(cpuOrderPTX)
	if !ok {
		t.Fatalf("kernels/cpuorder/cpuorder.ptx has no %q line: make it with scripts/build-cpuorder-ptx.sh on a machine with nvcc", strings.TrimSpace(ptxDigestPrefix))
	}
	if got != want {
		t.Fatalf("kernels/cpuorder/cpuorder.ptx was made from other sources (recorded %s, sources now %s): run scripts/build-cpuorder-ptx.sh on a machine with nvcc and commit the PTX", got, want)
	}
	for _, name := range []string{"co_mm_vec_f32", "co_mm_vec_f16", "co_mm_tiled_f32", "co_mm_tiled_f16", "co_mm_q4_0", "co_mm_q8_0", "co_act_q8_0", "co_mm_q4_k", "co_mm_q6_k", "co_act_q8_k", "co_rms_norm", "co_swiglu", "co_rope", "co_attention"} {
		if !strings.Contains(string(cpuOrderPTX), ".entry "+name+"(") {
			t.Errorf("kernels/cpuorder/cpuorder.ptx has no kernel %s", name)
		}
	}
	// The kernels must round where the CPU does: the build turns off the
	// contraction of products and sums into fused multiply-adds.
	if line := strings.SplitN(string(cpuOrderPTX), "\n", 3)[1]; !strings.Contains(line, "-fmad=false") {
		t.Errorf("kernels/cpuorder/cpuorder.ptx was not built with -fmad=false: %s", line)
	}
}
