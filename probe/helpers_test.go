package probe

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

// synthRun describes a small fake forward pass: every probe of the package
// documentation, in forward order, position-major within each probe (as a
// batched prefill emits them), with seeded random values.
type synthRun struct {
	layers, positions int
	info              DumpInfo
	// edit may change a tensor before it is emitted (to plant differences)
	// or return false to leave it out.
	edit func(name string, pos int, data []float32) bool
	// shapeOf may override a probe's shape (to plant a shape mismatch).
	shapeOf func(name string) []int
}

var testInfo = DumpInfo{
	Prompt:      "Once upon a time",
	TokenIDs:    []int32{1, 403, 407, 261, 378},
	ModelPath:   "stories260K.gguf",
	ModelSHA256: "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d",
	Backend:     "test",
	Created:     time.Date(2025, 11, 26, 4, 0, 0, 0, time.UTC),
}

// probeShape gives stories260K-like shapes: n_embd 8, 2 heads of 4 over
// 1 KV head, n_ff 12, vocabulary 16.
func probeShape(name string, pos int) []int {
	_, kind := ParseName(name)
	switch kind {
	case KindQ, KindQRope:
		return []int{2, 4}
	case KindK, KindKRope, KindV:
		return []int{1, 4}
	case KindAttnScores, KindAttnProbs:
		return []int{2, pos + 1}
	case KindFFNGate, KindFFNUp, KindFFNAct:
		return []int{12}
	case Logits:
		return []int{16}
	}
	return []int{8}
}

// names returns the probe names in forward order.
func (r synthRun) names() []string {
	names := []string{Embd}
	for _, ln := range NewLayerNames(r.layers) {
		names = append(names, ln.AttnNorm, ln.Q, ln.K, ln.V, ln.QRope, ln.KRope,
			ln.AttnScores, ln.AttnProbs, ln.AttnOut, ln.AttnProj, ln.FFNInp,
			ln.FFNNorm, ln.FFNGate, ln.FFNUp, ln.FFNAct, ln.FFNOut, ln.Out)
	}
	return append(names, OutputNorm, Logits)
}

// emit runs the fake forward pass into a Set.
func (r synthRun) emit(t testing.TB, s *Set) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, name := range r.names() {
		for pos := 0; pos < r.positions; pos++ {
			shape := probeShape(name, pos)
			if r.shapeOf != nil {
				if sh := r.shapeOf(name); sh != nil {
					shape = sh
				}
			}
			n, _ := shapeSize(shape)
			data := make([]float32, n)
			for i := range data {
				data[i] = float32(rng.NormFloat64())
			}
			if r.edit != nil && !r.edit(name, pos, data) {
				continue
			}
			if err := s.Emit(name, pos, shape, data); err != nil {
				t.Fatalf("Emit(%s, %d): %v", name, pos, err)
			}
		}
	}
}

// bytes returns the run as safetensors bytes.
func (r synthRun) bytes(t testing.TB) []byte {
	t.Helper()
	d := NewDump("", r.info)
	s := NewSet(Filter{}, d)
	r.emit(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := d.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// dumpFile returns the run read back as a DumpFile.
func (r synthRun) dumpFile(t testing.TB) *DumpFile {
	t.Helper()
	d, err := ParseDump(r.bytes(t))
	if err != nil {
		t.Fatalf("ParseDump of a fresh dump: %v", err)
	}
	return d
}

func baseRun() synthRun { return synthRun{layers: 2, positions: 4, info: testInfo} }
