package parallel

import (
	"sync/atomic"
	"testing"
)

type countTask struct {
	hits  []int32
	calls atomic.Int32
}

func (t *countTask) Run(worker, lo, hi int) {
	t.calls.Add(1)
	for i := lo; i < hi; i++ {
		atomic.AddInt32(&t.hits[i], 1)
	}
}

func TestForCoversEveryRowOnce(t *testing.T) {
	for _, tc := range []struct{ threads, n, align int }{
		{1, 10, 1}, {2, 10, 1}, {4, 3, 1}, {3, 100, 8}, {8, 1, 1}, {2, 0, 1}, {5, 1000, 32},
	} {
		p := New(tc.threads)
		task := &countTask{hits: make([]int32, tc.n)}
		p.For(tc.n, tc.align, task)
		for i, h := range task.hits {
			if h != 1 {
				t.Errorf("threads %d n %d align %d: row %d ran %d times", tc.threads, tc.n, tc.align, i, h)
			}
		}
		if int(task.calls.Load()) > tc.threads {
			t.Errorf("threads %d: %d ranges", tc.threads, task.calls.Load())
		}
		p.Close()
	}
}

func TestForAllocatesNothing(t *testing.T) {
	p := New(4)
	defer p.Close()
	task := &countTask{hits: make([]int32, 64)}
	allocs := testing.AllocsPerRun(100, func() { p.For(64, 4, task) })
	if allocs != 0 {
		t.Fatalf("For allocated %v times per call", allocs)
	}
}

type nopTask struct{}

func (nopTask) Run(worker, lo, hi int) {}

func BenchmarkFor(b *testing.B) {
	p := New(2)
	defer p.Close()
	var task Task = nopTask{}
	for b.Loop() {
		p.For(1024, 1, task)
	}
}
