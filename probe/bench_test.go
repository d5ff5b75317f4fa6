package probe

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// tinyLlamaDump builds a dump shaped like TinyLlama-1.1B (n_embd 2048, 22
// layers, 32 heads over 4 KV heads of 64, n_ff 5632, vocabulary 32000) for
// a few positions: about 3 MB of probes per position.
func tinyLlamaDump(b *testing.B, positions int) []byte {
	b.Helper()
	shapes := map[string][]int{
		KindAttnNorm: {2048}, KindQ: {32, 64}, KindK: {4, 64}, KindV: {4, 64}, KindQRope: {32, 64}, KindKRope: {4, 64},
		KindAttnOut: {2048}, KindAttnProj: {2048}, KindFFNInp: {2048}, KindFFNNorm: {2048}, KindFFNGate: {5632},
		KindFFNUp: {5632}, KindFFNAct: {5632}, KindFFNOut: {2048}, KindOut: {2048},
		Embd: {2048}, OutputNorm: {2048}, Logits: {32000},
	}
	rng := rand.New(rand.NewPCG(5, 6))
	d := NewDump("", testInfo)
	s := NewSet(Filter{}, d)
	emit := func(name string, pos int, shape []int) {
		n, _ := shapeSize(shape)
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(rng.NormFloat64())
		}
		if err := s.Emit(name, pos, shape, data); err != nil {
			b.Fatal(err)
		}
	}
	for pos := 0; pos < positions; pos++ {
		emit(Embd, pos, shapes[Embd])
		for layer := 0; layer < 22; layer++ {
			for _, kind := range LayerKinds() {
				shape := shapes[kind]
				if kind == KindAttnScores || kind == KindAttnProbs {
					shape = []int{32, pos + 1}
				}
				emit(LayerName(layer, kind), pos, shape)
			}
		}
		emit(OutputNorm, pos, shapes[OutputNorm])
		emit(Logits, pos, shapes[Logits])
	}
	var buf bytes.Buffer
	if _, err := d.WriteTo(&buf); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkDumpWrite measures writing 8 positions of TinyLlama probes.
func BenchmarkDumpWrite(b *testing.B) {
	raw := tinyLlamaDump(b, 8)
	d, err := ParseDump(raw)
	if err != nil {
		b.Fatal(err)
	}
	dump := NewDump("", testInfo)
	for _, k := range d.Keys {
		t := d.Tensors[k]
		v := t.Values()
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		if err := dump.Emit(t.Probe, t.Pos, t.Shape, f); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := dump.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadAndDiff measures reading two such dumps and diffing them.
func BenchmarkReadAndDiff(b *testing.B) {
	raw := tinyLlamaDump(b, 8)
	b.SetBytes(2 * int64(len(raw)))
	for b.Loop() {
		a, err := ParseDump(raw)
		if err != nil {
			b.Fatal(err)
		}
		ref, err := ParseDump(raw)
		if err != nil {
			b.Fatal(err)
		}
		r, err := Diff(a, ref, DiffOptions{})
		if err != nil || r.Diverged() {
			b.Fatal(err)
		}
	}
}
