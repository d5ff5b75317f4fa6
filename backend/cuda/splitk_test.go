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

// TestSplitIndexMath simulates, in Go, the index math of attention_split,
// attention_split_v and attention_combine as the kernels do it (a loop
// per block): every position 0..n-1 of every (row, head) lands in
// exactly one chunk, every scratch value a later launch reads was written
// by an earlier one, every index stays inside its region of the scratch
// newSplitLayout places, and the result equals a plain softmax-weighted
// sum (in float64, so that only the method is checked).
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
			rows := len(tc.pos)
			parts := rows * tc.heads * chunks
			lay := newSplitLayout(parts, tc.headDim)
			if !(lay.scores <= lay.vals && lay.vals <= lay.maxima && lay.maxima <= lay.sums && lay.sums%8 == 0 && lay.sums <= lay.size) {
				t.Fatalf("layout %+v", lay)
			}
			// Float indices of each region, nil meaning not yet written.
			region := func(at, end uintptr) []*float64 { return make([]*float64, (end-at)/4) }
			sc := region(lay.scores, lay.vals)
			pv := region(lay.vals, lay.maxima)
			pm := region(lay.maxima, lay.maxima+uintptr(parts)*4)
			ps := make([]*float64, (lay.size-lay.sums)/8)
			if lay.maxima+uintptr(parts)*4 > lay.sums {
				t.Fatal("maxima overlap the sums")
			}
			set := func(a []*float64, i int, v float64) {
				t.Helper()
				if i < 0 || i >= len(a) {
					t.Fatalf("write at %d of %d", i, len(a))
				}
				if a[i] != nil {
					t.Fatalf("write at %d twice", i)
				}
				a[i] = &v
			}
			get := func(a []*float64, i int) float64 {
				t.Helper()
				if i < 0 || i >= len(a) || a[i] == nil {
					t.Fatalf("read at %d of %d, never written", i, len(a))
				}
				return *a[i]
			}
			score := func(row, h, j int) float64 { return 3 * math.Sin(float64(row*7919+h*104729+j)*0.37) }
			value := func(row, h, j, d int) float64 { return math.Cos(float64(row*31+h*17+j*3+d) * 0.11) }
			seen := map[[3]int]int{}
			// blocks calls f for every (row, head, chunk) block that has work.
			blocks := func(f func(row, h, c, j0, m, part int)) {
				for row := range rows {
					n := tc.pos[row] + 1
					for h := range tc.heads {
						for c := range chunks {
							j0 := c * splitChunk
							if j0 >= n {
								continue
							}
							f(row, h, c, j0, min(n-j0, splitChunk), (row*tc.heads+h)*chunks+c)
						}
					}
				}
			}
			// totals is split_totals: M and 1/S of (row, head).
			totals := func(part0, used int) (float64, float64) {
				big := math.Inf(-1)
				for c := range used {
					big = math.Max(big, get(pm, part0+c))
				}
				total := 0.0
				for c := range used {
					total += get(ps, part0+c) * math.Exp(get(pm, part0+c)-big)
				}
				return big, 1 / total
			}
			blocks(func(row, h, c, j0, m, part int) { // attention_split
				mx := math.Inf(-1)
				for jj := range m {
					seen[[3]int{row, h, j0 + jj}]++
					mx = math.Max(mx, score(row, h, j0+jj))
				}
				sum := 0.0
				for jj := range m {
					set(sc, part*splitChunk+jj, score(row, h, j0+jj))
					sum += math.Exp(score(row, h, j0+jj) - mx)
				}
				set(pm, part, mx)
				set(ps, part, sum)
			})
			blocks(func(row, h, c, j0, m, part int) { // attention_split_v
				n := tc.pos[row] + 1
				used := (n + splitChunk - 1) / splitChunk
				if used > chunks || c >= used {
					t.Fatalf("row %d: chunk %d of %d used, %d launched", row, c, used, chunks)
				}
				big, inv := totals((row*tc.heads+h)*chunks, used)
				for d := range tc.headDim {
					acc := 0.0
					for jj := range m {
						acc += math.Exp(get(sc, part*splitChunk+jj)-big) * inv * value(row, h, j0+jj, d)
					}
					set(pv, part*tc.headDim+d, acc)
				}
			})
			for row := range rows { // attention_combine, against a plain softmax
				n := tc.pos[row] + 1
				used := min((n+splitChunk-1)/splitChunk, chunks)
				for h := range tc.heads {
					for j := range n {
						if seen[[3]int{row, h, j}] != 1 {
							t.Fatalf("row %d head %d position %d taken %d times", row, h, j, seen[[3]int{row, h, j}])
						}
					}
					part0 := (row*tc.heads + h) * chunks
					for _, d := range []int{0, tc.headDim - 1, r.IntN(tc.headDim)} {
						got := 0.0
						for c := range used {
							got += get(pv, (part0+c)*tc.headDim+d)
						}
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
							t.Fatalf("row %d head %d dim %d: split %.15g, softmax %.15g", row, h, d, got, want)
						}
					}
				}
			}
		})
	}
}
