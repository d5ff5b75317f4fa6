package cuda_test

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"llamago/backend"
	"llamago/backend/cuda"
	"llamago/tensor"
)

// randomBlocks fills rows×cols weights of type typ with random bytes and
// small valid F16 scales: quick to make for large matrices, and every
// byte pattern of the quants is valid.
func randomBlocks(r *rand.Rand, typ tensor.Type, rows, cols int) []byte {
	rowBytes, _ := typ.RowSize(int64(cols))
	data := make([]byte, int(rowBytes)*rows)
	for i := 0; i+8 <= len(data); i += 8 {
		binary.LittleEndian.PutUint64(data[i:], r.Uint64())
	}
	small := func(off int) { binary.LittleEndian.PutUint16(data[off:], 0x2000|uint16(r.IntN(0x3ff))) }
	switch typ {
	case tensor.F16:
		for i := 0; i < len(data); i += 2 {
			small(i)
		}
	case tensor.Q4_0, tensor.Q8_0:
		for i := 0; i < len(data); i += typ.TypeSize() {
			small(i)
		}
	case tensor.Q4_K:
		for i := 0; i < len(data); i += typ.TypeSize() {
			small(i)
			small(i + 2)
		}
	case tensor.Q6_K:
		for i := 0; i < len(data); i += typ.TypeSize() {
			small(i + 208)
		}
	}
	return data
}

// TestOpTimings prints how long single operations take at TinyLlama's
// decode sizes, as numbers for the next stage (graphs, fused kernels):
// the cost of one launch from Go, and the products' effective bandwidth
// over weights larger than the L2 cache.
func TestOpTimings(t *testing.T) {
	b := needGPU(t)
	r := rand.New(rand.NewPCG(9, 10))
	sync := func() { b.Read(b.View(b.NewMat(1, 1), 1), make([]float32, 1)) }

	x := b.NewMat(1, 2048)
	b.Write(x, randFloats(r, 2048, 1))
	y := b.NewMat(1, 2048)
	const adds = 2000
	sync()
	start := time.Now()
	for range adds {
		b.Add(y, x, x)
	}
	sync()
	t.Logf("Add (1×2048): %.2f µs per operation (launch-bound)", float64(time.Since(start).Microseconds())/adds)

	products := []struct {
		typ        tensor.Type
		rows, cols int
		copies     int // distinct weights cycled through, to defeat the L2 cache
	}{
		{tensor.Q4_0, 5632, 2048, 16},
		{tensor.Q4_0, 2048, 5632, 16},
		{tensor.Q8_0, 2048, 2048, 16},
		{tensor.Q4_K, 5632, 2048, 16},
		{tensor.Q6_K, 32000, 2048, 2},
		{tensor.F16, 2048, 2048, 16},
		{tensor.F32, 2048, 2048, 8},
	}
	for _, p := range products {
		ws := make([]backend.Weight, p.copies)
		var bytes int
		for i := range ws {
			data := randomBlocks(r, p.typ, p.rows, p.cols)
			bytes = len(data)
			w, err := b.LoadWeight(backend.WeightSpec{Name: "w", Type: p.typ, Rows: p.rows, Cols: p.cols, Data: data})
			if err != nil {
				t.Fatal(err)
			}
			ws[i] = w
		}
		for _, ntok := range []int{1, 64, 512} {
			xs := b.NewMat(ntok, p.cols)
			b.Write(xs, randFloats(r, ntok*p.cols, 1))
			ys := b.NewMat(ntok, p.rows)
			b.MatMul(ys, xs, ws[0])
			sync()
			reps := 20 * p.copies
			if ntok > 1 {
				reps = 2 * p.copies
			}
			start := time.Now()
			for i := range reps {
				b.MatMul(ys, xs, ws[i%p.copies])
			}
			sync()
			per := time.Since(start).Seconds() / float64(reps)
			t.Logf("MatMul %s %d×%d, %d token(s): %.1f µs, weights at %.0f GB/s, %.2f TFLOP/s",
				p.typ, p.rows, p.cols, ntok, per*1e6, float64(bytes)/per/1e9, 2*float64(p.rows*p.cols*ntok)/per/1e12)
		}
	}

	// F16 prefill products on cuBLAS (when loaded; the lines above use it
	// too) and on mmh_f16 (a backend with NoCUBLAS), at pp512's batch.
	t.Logf("cuBLAS: %s", b.CUBLASStatus())
	own, err := cuda.New(cuda.Options{NoCUBLAS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	for _, shape := range []struct{ rows, cols int }{{2048, 2048}, {5632, 2048}} {
		const ntok, copies = 512, 8
		data := make([][]byte, copies)
		for i := range data {
			data[i] = randomBlocks(r, tensor.F16, shape.rows, shape.cols)
		}
		xv := randFloats(r, ntok*shape.cols, 1)
		for _, bk := range []struct {
			name string
			b    *cuda.Backend
		}{{"cuBLAS", b}, {"mmh_f16", own}} {
			if bk.b.CUBLAS() == "" && bk.name == "cuBLAS" {
				continue
			}
			t.Logf("MatMul F16 %d×%d, %d tokens, %s: %.2f TFLOP/s",
				shape.rows, shape.cols, ntok, bk.name, f16ProductTFLOPs(t, bk.b, data, shape.rows, shape.cols, xv, ntok))
		}
	}

	// Attention of one decode row at positions 1000 and 4000 (TinyLlama's
	// heads), split-K and, on a backend with it off, the one-block kernel.
	unsplit, err := cuda.New(cuda.Options{NoSplitK: true})
	if err != nil {
		t.Fatal(err)
	}
	defer unsplit.Close()
	for _, at := range []int32{1000, 4000} {
		for _, bk := range []struct {
			name string
			b    *cuda.Backend
		}{{"split-K", b}, {"one block per head", unsplit}} {
			t.Logf("Attention, 32 heads over 4 KV heads of 64, F16 cache, position %d, %s: %.1f µs", at, bk.name, decodeAttentionMicros(bk.b, r, at))
		}
	}
	cfg := backend.KVConfig{Slots: 1, Layers: 1, Ctx: 2048, KVDim: 256}
	c := b.NewKVCache(cfg)
	ap := backend.AttnParams{Heads: 32, KVHeads: 4, HeadDim: 64, Scale: 0.125}

	// Prefill attention: 512 query rows at positions 0..511 (pp512).
	const rows = 512
	var pre backend.Batch
	for i := range rows {
		pre.Slot, pre.Pos = append(pre.Slot, 0), append(pre.Pos, int32(i))
	}
	qp, outp := b.NewMat(rows, 2048), b.NewMat(rows, 2048)
	b.Write(qp, randFloats(r, rows*2048, 1))
	b.Attention(outp, qp, c, 0, pre, ap, nil, nil)
	sync()
	const pres = 10
	start = time.Now()
	for range pres {
		b.Attention(outp, qp, c, 0, pre, ap, nil, nil)
	}
	sync()
	t.Logf("Attention, prefill of %d rows (positions 0..%d): %.1f µs", rows, rows-1, float64(time.Since(start).Microseconds())/pres)
}

// decodeAttentionMicros returns the time of one decode row's attention at
// position at, 32 heads over 4 KV heads of 64 with an F16 cache of 4096
// positions, averaged over back-to-back launches.
func decodeAttentionMicros(b *cuda.Backend, r *rand.Rand, at int32) float64 {
	sync := func() { b.Read(b.View(b.NewMat(1, 1), 1), make([]float32, 1)) }
	cfg := backend.KVConfig{Slots: 1, Layers: 1, Ctx: 4096, KVDim: 256}
	c := b.NewKVCache(cfg)
	n := int(at) + 1
	var fill backend.Batch
	for i := range n {
		fill.Slot, fill.Pos = append(fill.Slot, 0), append(fill.Pos, int32(i))
	}
	k, v := b.NewMat(n, 256), b.NewMat(n, 256)
	b.Write(k, randFloats(r, n*256, 1))
	b.Write(v, randFloats(r, n*256, 1))
	b.StoreKV(c, 0, fill, k, v)
	q, out := b.NewMat(1, 2048), b.NewMat(1, 2048)
	b.Write(q, randFloats(r, 2048, 1))
	step := backend.Batch{Slot: []int32{0}, Pos: []int32{at}}
	ap := backend.AttnParams{Heads: 32, KVHeads: 4, HeadDim: 64, Scale: 0.125}
	b.Attention(out, q, c, 0, step, ap, nil, nil)
	sync()
	const atts = 200
	start := time.Now()
	for range atts {
		b.Attention(out, q, c, 0, step, ap, nil, nil)
	}
	sync()
	return float64(time.Since(start).Microseconds()) / atts
}

// f16ProductTFLOPs times ntok-token products with the F16 weights in data
// (cycled through, to defeat the L2 cache) on b.
func f16ProductTFLOPs(t *testing.T, b *cuda.Backend, data [][]byte, rows, cols int, xv []float32, ntok int) float64 {
	t.Helper()
	sync := func() { b.Read(b.View(b.NewMat(1, 1), 1), make([]float32, 1)) }
	ws := make([]backend.Weight, len(data))
	for i := range ws {
		w, err := b.LoadWeight(backend.WeightSpec{Name: "w", Type: tensor.F16, Rows: rows, Cols: cols, Data: data[i]})
		if err != nil {
			t.Fatal(err)
		}
		ws[i] = w
	}
	x, y := b.NewMat(ntok, cols), b.NewMat(ntok, rows)
	b.Write(x, xv)
	b.MatMul(y, x, ws[0])
	sync()
	reps := 4 * len(ws)
	start := time.Now()
	for i := range reps {
		b.MatMul(y, x, ws[i%len(ws)])
	}
	sync()
	per := time.Since(start).Seconds() / float64(reps)
	return 2 * float64(rows*cols*ntok) / per / 1e12
}
