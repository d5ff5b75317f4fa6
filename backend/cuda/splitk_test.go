package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestSplitChunks checks when decode attention splits and into how many
// chunks: none below splitMinPositions, enough chunks for the largest
// position, powers of two capped by the context's chunks.
func TestSplitChunks(t *testing.T) {
	for _, tc := range []struct {
		maxPos, ctx, want int
	}{
		{0, 2048, 0},
		{splitMinPositions - 2, 2048, 0},
		{splitMinPositions - 1, 2048, 2},
		{1000, 2048, 4},
		{1023, 2048, 4},
		{1024, 2048, 8},
		{1000, 1100, 4},
		{1100, 1200, 5}, // 5 chunks needed, the context has only 5
		{4000, 4096, 16},
		{4000, 8192, 16},
		{5000, 8192, 32},
		{2047, 2048, 8},
		{2048, 2048, 0}, // a position outside the context is refused before, never split
		{splitMaxChunks*splitChunk + 5, 1 << 30, 0},
	} {
		if got := splitChunks(tc.maxPos, tc.ctx); got != tc.want {
			t.Errorf("splitChunks(%d, %d) = %d, want %d", tc.maxPos, tc.ctx, got, tc.want)
		}
	}
}

// TestSplitIndexMath simulates, in Go, the index math of attention_split
// and attention_combine as the kernels do it (one goroutine-free loop per
// block): every position 0..n-1 of every (row, head) lands in exactly one
// chunk that the combine then reads, every partial the combine reads was
// written, writes stay inside the scratch splitAttention allocates, and
// the rescaled merge of the partials equals a plain softmax-weighted sum
// (in float64, so that only the method is checked).
func TestSplitIndexMath(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		heads, headDim, ctx int
		pos                 []int
	}{
		{32, 64, 2048, []int{1000}},
		{32, 64, 2048, []int{511}},
		{32, 64, 2048, []int{2047}},
		{8, 16, 600, []int{530, 9}}, // two slots, one row below a chunk
		{8, 128, 4096, []int{4000, 700, 3000}},
		{4, 96, 1300, []int{1299}},
	} {
		t.Run(fmt.Sprintf("%d heads of %d, ctx %d, positions %v", tc.heads, tc.headDim, tc.ctx, tc.pos), func(t *testing.T) {
			maxPos := 0
			for _, p := range tc.pos {
				maxPos = max(maxPos, p)
			}
			chunks := splitChunks(maxPos, tc.ctx)
			if chunks == 0 {
				t.Fatalf("no split at position %d", maxPos)
			}
			if chunks*splitChunk < maxPos+1 {
				t.Fatalf("%d chunks of %d do not cover position %d", chunks, splitChunk, maxPos)
			}
			rows := len(tc.pos)
			parts := rows * tc.heads * chunks
			pv := make([]float64, parts*tc.headDim)
			pm := make([]float64, parts)
			ps := make([]float64, parts)
			written := make([]bool, parts)
			// The scores and values of (row, head): random, per position.
			score := func(row, h, j int) float64 { return math.Sin(float64(row*7919+h*104729+j) * 0.37) }
			value := func(row, h, j, d int) float64 { return math.Cos(float64(row*31+h*17+j*3+d) * 0.11) }
			seen := make(map[[3]int]int)
			for row := range rows {
				n := tc.pos[row] + 1
				for h := range tc.heads {
					for c := range chunks { // blockIdx.z
						j0 := c * splitChunk
						if j0 >= n {
							continue
						}
						m := min(n-j0, splitChunk)
						if m > 1024 { // SPLIT_MAX_CHUNK
							t.Fatalf("chunk of %d positions", m)
						}
						part := (row*tc.heads+h)*chunks + c
						if part < 0 || part >= parts || written[part] {
							t.Fatalf("part %d out of %d, written before %v", part, parts, part < parts && part >= 0 && written[part])
						}
						written[part] = true
						mx := math.Inf(-1)
						for jj := range m {
							seen[[3]int{row, h, j0 + jj}]++
							mx = math.Max(mx, score(row, h, j0+jj))
						}
						for jj := range m {
							e := math.Exp(score(row, h, j0+jj) - mx)
							ps[part] += e
							for d := range tc.headDim {
								pv[part*tc.headDim+d] += e * value(row, h, j0+jj, d)
							}
						}
						pm[part] = mx
					}
				}
			}
			for row := range rows {
				n := tc.pos[row] + 1
				for h := range tc.heads {
					for j := range n {
						if seen[[3]int{row, h, j}] != 1 {
							t.Fatalf("row %d head %d position %d taken %d times", row, h, j, seen[[3]int{row, h, j}])
						}
					}
					// The combine.
					used := min((n+splitChunk-1)/splitChunk, chunks)
					part0 := (row*tc.heads + h) * chunks
					big := math.Inf(-1)
					for c := range used {
						if !written[part0+c] {
							t.Fatalf("row %d head %d: chunk %d read, never written", row, h, c)
						}
						big = math.Max(big, pm[part0+c])
					}
					total := 0.0
					for c := range used {
						total += ps[part0+c] * math.Exp(pm[part0+c]-big)
					}
					for _, d := range []int{0, tc.headDim - 1, r.IntN(tc.headDim)} {
						got := 0.0
						for c := range used {
							got += math.Exp(pm[part0+c]-big) / total * pv[(part0+c)*tc.headDim+d]
						}
						// A plain softmax over all positions.
						mx := math.Inf(-1)
						for j := range n {
							mx = math.Max(mx, score(row, h, j))
						}
						sum, want := 0.0, 0.0
						for j := range n {
							e := math.Exp(score(row, h, j) - mx)
							sum += e
							want += e * value(row, h, j, d)
						}
						want /= sum
						if math.Abs(got-want) > 1e-12 {
							t.Fatalf("row %d head %d dim %d: merged %.15g, softmax %.15g", row, h, d, got, want)
						}
					}
				}
			}
			// The scratch layout of splitAttention: values, maxima, then
			// 8-aligned sums, all inside the allocation.
			valsBytes := parts * tc.headDim * 4
			sumAt := (valsBytes + parts*4 + 7) &^ 7
			if sumAt < valsBytes+parts*4 || sumAt%8 != 0 {
				t.Fatalf("sums at byte %d overlap the maxima or are misaligned", sumAt)
			}
		})
	}
}

// TestFuseActIntoAttentionCombine checks that the o projection's Q8_0
// rounding of one decode row merges into split-K attention's merge
// launch, and nothing else does.
func TestFuseActIntoAttentionCombine(t *testing.T) {
	const combineFn, out = 12, 1 << 36
	x := &mat{rows: 1, cols: 32 * 64, ptr: 1 << 30}
	b := &Backend{}
	b.k.attentionCombine = combineFn
	queue := func(rows uint32, headDim uint64) {
		r := launchRec{fn: combineFn, grid: dim3{32, rows, 1}, n: attnCombineAct + 1}
		r.vals[0], r.vals[2], r.vals[3] = x.ptr, 32, headDim
		b.pending = []launchRec{r}
	}
	queue(1, 64)
	if !b.fuseAct(x, out, actQ8_0Int) || b.pending[0].vals[attnCombineAct] != out {
		t.Fatalf("the rounding did not merge: act %#x", b.pending[0].vals[attnCombineAct])
	}
	for _, c := range []struct {
		name    string
		kind    int
		rows    uint32
		headDim uint64
		x       *mat
	}{
		{"Q8_K rounding (blocks of 256 span heads)", actQ8_KInt, 1, 64, x},
		{"float rounding", actQ8_0, 1, 64, x},
		{"two rows", actQ8_0Int, 2, 64, x},
		{"heads of 48 (not whole blocks)", actQ8_0Int, 1, 48, &mat{rows: 1, cols: 32 * 48, ptr: x.ptr}},
		{"another matrix", actQ8_0Int, 1, 64, &mat{rows: 1, cols: 32 * 64, ptr: x.ptr + 4}},
	} {
		queue(c.rows, c.headDim)
		if b.fuseAct(c.x, out, c.kind) {
			t.Errorf("%s: merged", c.name)
		}
	}
}
