package parallel

import (
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type countTask struct {
	hits  []int32
	calls atomic.Int32
	align int
	bad   atomic.Int32 // ranges that start off the alignment
}

func (t *countTask) Run(worker, lo, hi int) {
	t.calls.Add(1)
	if lo%t.align != 0 || lo >= hi {
		t.bad.Add(1)
	}
	for i := lo; i < hi; i++ {
		atomic.AddInt32(&t.hits[i], 1)
	}
}

func TestForCoversEveryRowOnce(t *testing.T) {
	for _, tc := range []struct{ threads, n, align int }{
		{1, 10, 1}, {2, 10, 1}, {4, 3, 1}, {3, 100, 8}, {8, 1, 1}, {2, 0, 1}, {5, 1000, 32}, {2, 7, 0}, {3, 1 << 16, 4},
	} {
		p := New(tc.threads)
		// Many operations in a row: a worker that is late for one must
		// not run a range of the next.
		ops := 200
		if tc.n > 10000 {
			ops = 5
		}
		for op := 0; op < ops; op++ {
			task := &countTask{hits: make([]int32, tc.n), align: max(tc.align, 1)}
			p.For(tc.n, tc.align, task)
			for i, h := range task.hits {
				if h != 1 {
					t.Fatalf("threads %d n %d align %d op %d: row %d ran %d times", tc.threads, tc.n, tc.align, op, i, h)
				}
			}
			if task.bad.Load() != 0 {
				t.Fatalf("threads %d n %d align %d: %d ranges empty or off the alignment", tc.threads, tc.n, tc.align, task.bad.Load())
			}
			if c := int(task.calls.Load()); c > tc.threads*chunksPerThread {
				t.Fatalf("threads %d: %d ranges", tc.threads, c)
			}
		}
		p.Close()
	}
}

// workerTask records overlapping calls with the same worker id, which
// would make per-worker scratch space unsafe.
type workerTask struct {
	busy    []atomic.Int32
	overlap atomic.Int32
	sum     atomic.Int64
}

func (t *workerTask) Run(worker, lo, hi int) {
	if t.busy[worker].Add(1) != 1 {
		t.overlap.Add(1)
	}
	s := 0
	for i := lo; i < hi; i++ {
		s += i
	}
	t.sum.Add(int64(s))
	t.busy[worker].Add(-1)
}

func TestWorkerIDsAreExclusive(t *testing.T) {
	const threads, n = 4, 1000
	p := New(threads)
	defer p.Close()
	task := &workerTask{busy: make([]atomic.Int32, threads)}
	for op := 0; op < 500; op++ {
		task.sum.Store(0)
		p.For(n, 3, task)
		if got := task.sum.Load(); got != n*(n-1)/2 {
			t.Fatalf("op %d: sum of rows %d, want %d", op, got, n*(n-1)/2)
		}
	}
	if task.overlap.Load() != 0 {
		t.Fatalf("%d calls overlapped another with the same worker id", task.overlap.Load())
	}
}

// TestParkedWorkersWake leaves the workers idle long enough to park
// between operations.
func TestParkedWorkersWake(t *testing.T) {
	p := New(3)
	defer p.Close()
	for op := 0; op < 5; op++ {
		time.Sleep(5 * time.Millisecond) // well past spinFor: the workers park
		task := &countTask{hits: make([]int32, 64), align: 1}
		p.For(64, 1, task)
		for i, h := range task.hits {
			if h != 1 {
				t.Fatalf("op %d: row %d ran %d times", op, i, h)
			}
		}
	}
}

func TestCloseStopsWorkers(t *testing.T) {
	p := New(4)
	p.For(100, 1, &countTask{hits: make([]int32, 100), align: 1})
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	p.Close() // a second Close is harmless
}

func TestForAllocatesNothing(t *testing.T) {
	p := New(4)
	defer p.Close()
	task := &countTask{hits: make([]int32, 64), align: 4}
	allocs := testing.AllocsPerRun(100, func() { p.For(64, 4, task) })
	if allocs != 0 {
		t.Fatalf("For allocated %v times per call", allocs)
	}
}

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Skip("no getrusage:", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestIdlePoolSleeps checks that workers park: an idle pool must not keep
// cores busy between requests.
func TestIdlePoolSleeps(t *testing.T) {
	p := New(4)
	defer p.Close()
	p.For(100, 1, &countTask{hits: make([]int32, 100), align: 1})
	time.Sleep(20 * time.Millisecond) // let the workers park
	before := cpuTime(t)
	time.Sleep(200 * time.Millisecond)
	used := cpuTime(t) - before
	// Three spinning workers would use 600ms; allow for the runtime's own
	// background work.
	if used > 40*time.Millisecond {
		t.Fatalf("idle pool used %v of CPU in 200ms", used)
	}
}

type nopTask struct{}

func (nopTask) Run(worker, lo, hi int) {}

// BenchmarkFor is the cost of one operation's barrier, with back-to-back
// operations as in a forward pass.
func BenchmarkFor(b *testing.B) {
	p := New(2)
	defer p.Close()
	var task Task = nopTask{}
	for b.Loop() {
		p.For(1024, 1, task)
	}
}

// sumTask does a little work per row, so that the workers join in.
type sumTask struct {
	data []float32
	out  []float32
}

func (t *sumTask) Run(worker, lo, hi int) {
	for r := lo; r < hi; r++ {
		var s float32
		for _, v := range t.data[r*64 : (r+1)*64] {
			s += v
		}
		t.out[r] = s
	}
}

// BenchmarkForSmallOp is an operation of about a microsecond of work, the
// size of a small model's operations: the barrier's cost is the time above
// the work's.
func BenchmarkForSmallOp(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(map[int]string{1: "threads=1", 2: "threads=2"}[threads], func(b *testing.B) {
			p := New(threads)
			defer p.Close()
			task := &sumTask{data: make([]float32, 64*64), out: make([]float32, 64)}
			for b.Loop() {
				p.For(64, 4, task)
			}
		})
	}
}
