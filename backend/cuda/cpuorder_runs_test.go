package cuda

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"llamago/backend"
)

// TestQ4KGemmTokens: which tokens of a Q4_K product take ggml's gemm
// order in CPU-order mode, by the rule of kernels.MatMulRows (a product
// of n >= 4 tokens: its first n - n%4) applied to each sequence run.
func TestQ4KGemmTokens(t *testing.T) {
	tests := []struct {
		ntok int
		runs []int
		want []int32 // nil: every token in the gemv order
	}{
		{1, nil, nil},
		{3, nil, nil},
		{4, nil, []int32{1, 1, 1, 1}},
		{5, nil, []int32{1, 1, 1, 1, 0}},
		{7, []int{7}, []int32{1, 1, 1, 1, 0, 0, 0}}, // one run: the whole product
		{5, []int{1, 4}, []int32{0, 1, 1, 1, 1}},
		{5, []int{2, 3}, nil},
		{19, []int{1, 17, 1}, []int32{0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}},
		{10, []int{5, 5}, []int32{1, 1, 1, 1, 0, 1, 1, 1, 1, 0}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d tokens runs %v", tc.ntok, tc.runs), func(t *testing.T) {
			got := q4KGemmTokens(make([]int32, 0, 2), tc.ntok, tc.runs)
			if !slices.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestQ4KGemmTokensBadRuns: runs that do not add up to the product's
// tokens are a shape error, not a silent misorder.
func TestQ4KGemmTokensBadRuns(t *testing.T) {
	defer func() {
		r := recover()
		err, ok := r.(error)
		var se *backend.ShapeError
		if !ok || !errors.As(err, &se) {
			t.Errorf("recovered %v, want a *backend.ShapeError", r)
		}
	}()
	q4KGemmTokens(nil, 6, []int{2, 3})
}
