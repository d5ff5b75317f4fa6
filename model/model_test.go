package model

import "testing"

func TestInOrder(t *testing.T) {
	for _, c := range []struct {
		rows []int32
		n    int
		want bool
	}{
		{[]int32{0}, 1, true},
		{[]int32{0, 1, 2}, 3, true},
		{[]int32{2}, 3, false},
		{[]int32{1, 0}, 2, false},
		{[]int32{0, 1}, 3, false},
		{nil, 0, true},
	} {
		if got := inOrder(c.rows, c.n); got != c.want {
			t.Errorf("inOrder(%v, %d) = %v, want %v", c.rows, c.n, got, c.want)
		}
	}
}
