package membw

import (
	"context"
	"testing"
	"time"

	"llamago/tensor"
)

func TestSumWords(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 100} {
		w := make([]uint64, n)
		var want uint64
		for i := range w {
			w[i] = uint64(i*i + 3)
			want += w[i]
		}
		if got := sumWords(w); got != want {
			t.Errorf("sumWords of %d words = %d, want %d", n, got, want)
		}
	}
}

func TestSumCoversBufferOnce(t *testing.T) {
	b, err := NewBuffer(1 << 16)
	if err != nil {
		t.Fatal(err)
	}
	want := sumWords(b.words)
	for _, threads := range []int{1, 2, 3, 7} {
		r, err := b.Sum(threads)
		if err != nil {
			t.Fatal(err)
		}
		if r.Checksum != want || r.Bytes != 1<<16 || r.Threads != threads {
			t.Errorf("%d threads: checksum %d bytes %d, want %d and %d", threads, r.Checksum, r.Bytes, want, 1<<16)
		}
		if r.GBPerSecond() <= 0 {
			t.Errorf("%d threads: %v GB/s", threads, r.GBPerSecond())
		}
	}
}

func TestKernel(t *testing.T) {
	b, err := NewBuffer(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []tensor.Type{tensor.Q4_0, tensor.Q8_0, tensor.Q4_K, tensor.F16} {
		r, err := b.Kernel(typ, 2)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if r.Bytes <= 0 || r.Bytes > b.Bytes() || r.GBPerSecond() <= 0 {
			t.Errorf("%s: %d bytes of %d at %v GB/s", typ, r.Bytes, b.Bytes(), r.GBPerSecond())
		}
	}
	if _, err := b.Kernel(tensor.Q4_0, 0); err == nil {
		t.Error("0 threads: no error")
	}
	small, _ := NewBuffer(64)
	if _, err := small.Kernel(tensor.Q8_0, 1); err == nil {
		t.Error("buffer smaller than a row: no error")
	}
}

func TestBestKeepsFastest(t *testing.T) {
	durations := []int64{300, 100, 200}
	i := 0
	best, err := Best(context.Background(), 3, func() (Result, error) {
		d := durations[i]
		i++
		return Result{Bytes: 1000, Duration: time.Duration(d) * time.Millisecond}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if best.Duration != 100*time.Millisecond {
		t.Errorf("best = %v, want the 100 ms pass", best.Duration)
	}
	if _, err := NewBuffer(4); err == nil {
		t.Error("NewBuffer(4): no error")
	}
}
