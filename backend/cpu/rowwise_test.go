package cpu

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"llamago/backend"
	"llamago/tensor"
)

// TestRowwiseOpsSplitExactly runs the element-wise and per-row operations
// on batches below and above the size from which they are split across
// workers: every row must equal a plain reference, and the split result
// must equal the single-threaded one bit for bit.
func TestRowwiseOpsSplitExactly(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	one, three := New(Options{Threads: 1}), New(Options{Threads: 3})
	defer one.Close()
	defer three.Close()
	for _, shape := range []struct{ rows, cols int }{{1, 64}, {3, 96}, {97, 512}, {40, 2048}, {5, 172}, {90, 376}} {
		rows, cols := shape.rows, shape.cols
		x, y := randSlice(r, rows*cols, 2), randSlice(r, rows*cols, 2)
		wv := randSlice(r, cols, 1)
		wb := make([]byte, 4*cols)
		for i, v := range wv {
			binary.LittleEndian.PutUint32(wb[4*i:], math.Float32bits(v))
		}
		pos := make([]int32, rows)
		for i := range pos {
			pos[i] = int32(r.IntN(2048))
		}
		rope := backend.RoPEParams{Heads: cols / 16, HeadDim: 16, Dims: 12, FreqBase: 10000, FreqScale: 0.5}
		if cols%16 != 0 {
			rope.Heads, rope.HeadDim, rope.Dims = cols/4, 4, 4
		}
		results := [2][4][]float32{}
		for bi, b := range []*Backend{one, three} {
			w, err := b.LoadWeight(backend.WeightSpec{Name: "norm", Type: tensor.F32, Rows: 1, Cols: cols, Data: wb})
			if err != nil {
				t.Fatal(err)
			}
			xm, ym, dst := b.NewMat(rows, cols), b.NewMat(rows, cols), b.NewMat(rows, cols)
			b.Write(xm, x)
			b.Write(ym, y)
			read := func() []float32 {
				out := make([]float32, rows*cols)
				b.Read(dst, out)
				return out
			}
			b.RMSNorm(dst, xm, w, 1e-5)
			results[bi][0] = read()
			b.Add(dst, xm, ym)
			results[bi][1] = read()
			b.SwiGLU(dst, xm, ym)
			results[bi][2] = read()
			b.Write(dst, x)
			b.RoPE(dst, pos, rope)
			results[bi][3] = read()
		}
		for op, name := range []string{"RMSNorm", "Add", "SwiGLU", "RoPE"} {
			for i := range results[0][op] {
				if math.Float32bits(results[0][op][i]) != math.Float32bits(results[1][op][i]) {
					t.Fatalf("%s %d×%d: value %d is %g on one thread, %g on three", name, rows, cols, i, results[0][op][i], results[1][op][i])
				}
			}
		}
		// Plain float64 references, and each row as llama.cpp computes it
		// alone (SwiGLU's groups of 16 start at every row).
		for row := range rows {
			xr, yr := x[row*cols:(row+1)*cols], y[row*cols:(row+1)*cols]
			alone := make([]float32, cols)
			swigluGo(alone, xr, yr)
			for i, v := range alone {
				if got := results[0][2][row*cols+i]; math.Float32bits(got) != math.Float32bits(v) {
					t.Fatalf("SwiGLU %d×%d: row %d value %d = %g, the row alone %g", rows, cols, row, i, got, v)
				}
			}
			var ss float64
			for _, v := range xr {
				ss += float64(v) * float64(v)
			}
			inv := 1 / math.Sqrt(ss/float64(cols)+1e-5)
			for i := range cols {
				check := func(name string, got float32, want float64) {
					if math.Abs(float64(got)-want) > 1e-5*max(1, math.Abs(want)) {
						t.Fatalf("%s %d×%d: row %d value %d = %g, want %g", name, rows, cols, row, i, got, want)
					}
				}
				k := row*cols + i
				check("RMSNorm", results[0][0][k], float64(xr[i])*inv*float64(wv[i]))
				check("Add", results[0][1][k], float64(xr[i])+float64(yr[i]))
				check("SwiGLU", results[0][2][k], float64(xr[i])/(1+math.Exp(-float64(xr[i])))*float64(yr[i]))
				// RoPE: adjacent pairs (2p, 2p+1) of the first Dims values
				// of each head rotate by pos·scale·base^(-2p/Dims).
				h, d := i/rope.HeadDim, i%rope.HeadDim
				want := float64(xr[i])
				if d < rope.Dims {
					pair := d / 2
					a := float64(pos[row]) * float64(rope.FreqScale) * math.Pow(float64(rope.FreqBase), -2*float64(pair)/float64(rope.Dims))
					x0, x1 := float64(xr[h*rope.HeadDim+2*pair]), float64(xr[h*rope.HeadDim+2*pair+1])
					if d%2 == 0 {
						want = x0*math.Cos(a) - x1*math.Sin(a)
					} else {
						want = x0*math.Sin(a) + x1*math.Cos(a)
					}
				}
				// The angle is accumulated in float32 as ggml does: at
				// position 2048 it is off by up to ~1e-4 radians.
				if math.Abs(float64(results[0][3][k])-want) > 2e-3*max(1, math.Abs(want)) {
					t.Fatalf("RoPE %d×%d: row %d value %d = %g, want %g", rows, cols, row, i, results[0][3][k], want)
				}
			}
		}
	}
}

// BenchmarkRoPE rotates a TinyLlama-shaped prompt's queries: 103 rows of
// 32 heads of 64 at positions 0-102 (angles, cosines and sines per row).
func BenchmarkRoPE(b *testing.B) {
	be := New(Options{Threads: 1})
	defer be.Close()
	const rows, heads, hd = 103, 32, 64
	x := be.NewMat(rows, heads*hd)
	r := rand.New(rand.NewPCG(1, 1))
	be.Write(x, randSlice(r, rows*heads*hd, 1))
	pos := make([]int32, rows)
	for i := range pos {
		pos[i] = int32(i)
	}
	p := backend.RoPEParams{Heads: heads, HeadDim: hd, Dims: hd, FreqBase: 10000, FreqScale: 1}
	for b.Loop() {
		be.RoPE(x, pos, p)
	}
}
