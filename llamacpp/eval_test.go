package llamacpp

import (
	"encoding/binary"
	"math"
	"testing"

	"llamago/tensor"
)

// TestStridedToFloat reads hand-made layouts: a transposed F32 matrix
// (nb[0] larger than the element), an F16 tensor with dims 1 and 2
// swapped, and Q8_0 rows with padding between them.
func TestStridedToFloat(t *testing.T) {
	lib := openLib(t)
	const rows, cols = 3, 4 // logical shape: ne = {cols, rows}
	want := make([]float32, rows*cols)
	for i := range want {
		want[i] = float32(i) - 5.5
	}

	// Transposed F32: element (c, r) at byte 4*(r + rows*c).
	tr32 := make([]byte, 4*rows*cols)
	for r := range rows {
		for c := range cols {
			binary.LittleEndian.PutUint32(tr32[4*(r+rows*c):], math.Float32bits(want[c+cols*r]))
		}
	}

	// F16 with ne = {2, 3, 2}, stored as {2, 2, 3}: (a, b, c) at
	// element a + 2*(c + 2*b).
	const n0, n1, n2 = 2, 3, 2
	want16 := make([]float32, n0*n1*n2)
	raw16 := make([]byte, 2*n0*n1*n2)
	for c := range n2 {
		for b := range n1 {
			for a := range n0 {
				v := float32(a + 10*b + 100*c)
				want16[a+n0*(b+n1*c)] = v
				binary.LittleEndian.PutUint16(raw16[2*(a+n0*(c+n2*b)):], lib.FP32ToFP16(v))
			}
		}
	}

	// Q8_0: two rows of one block, 34 bytes each, 6 bytes of padding.
	src := make([]float32, 64)
	for i := range src {
		src[i] = float32(i%17) - 8
	}
	q, err := lib.Quantize(tensor.Q8_0, src, 2, 32)
	if err != nil {
		t.Fatal(err)
	}
	wantQ, err := lib.Dequantize(tensor.Q8_0, q, 64)
	if err != nil {
		t.Fatal(err)
	}
	rawQ := make([]byte, 40+34)
	copy(rawQ, q[:34])
	copy(rawQ[40:], q[34:])

	tests := []struct {
		name string
		typ  tensor.Type
		ne   [4]int64
		nb   [4]uint64
		raw  []byte
		want []float32
	}{
		{"transposed F32", tensor.F32, [4]int64{cols, rows, 1, 1}, [4]uint64{4 * rows, 4, 4 * rows * cols, 4 * rows * cols}, tr32, want},
		{"permuted F16", tensor.F16, [4]int64{n0, n1, n2, 1}, [4]uint64{2, 2 * n0 * n2, 2 * n0, 2 * n0 * n1 * n2}, raw16, want16},
		{"padded Q8_0 rows", tensor.Q8_0, [4]int64{32, 2, 1, 1}, [4]uint64{34, 40, 80, 80}, rawQ, wantQ},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			traits, err := lib.traits(tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			got, err := lib.stridedToFloat(tt.typ, traits, tt.ne, tt.nb, tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d values, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("[%d] = %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}

	// Strides that point past the bytes fail instead of reading garbage.
	traits, _ := lib.traits(tensor.F32)
	if _, err := lib.stridedToFloat(tensor.F32, traits, [4]int64{cols, rows, 1, 1}, [4]uint64{4 * rows, 8, 96, 96}, tr32); err == nil {
		t.Error("overrunning strides: no error")
	}
}

func TestLayer0Only(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"attn_norm-0", true},
		{"attn_norm-1", false},
		{"l_out-10", false},
		{"result_output", true},
		{"cache_k_l0 (view)", true},
		{"cache_v_l0 (reshaped) (view)", true},
		{"cache_k_l1 (view) (permuted)", false},
		{"cache_v_l10 (view)", false},
	}
	for _, tt := range tests {
		if got := layer0Only(tt.name); got != tt.want {
			t.Errorf("layer0Only(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestLogBuffer(t *testing.T) {
	var b logBuffer
	b.write("llama_model_load: ")
	b.write("error loading model\n")
	b.write("line two\nline three\npartial")
	got := b.last(10)
	want := []string{"llama_model_load: error loading model", "line two", "line three", "partial"}
	if len(got) != len(want) {
		t.Fatalf("last(10) = %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %q, want %q", i, got[i], want[i])
		}
	}
	if got := b.last(1); len(got) != 1 || got[0] != "partial" {
		t.Errorf("last(1) = %q", got)
	}
	for i := range logKeep + 5 {
		b.write(string(rune('a'+i%26)) + "\n")
	}
	all := b.last(1000)
	if len(all) != logKeep {
		t.Fatalf("kept %d lines, want %d", len(all), logKeep)
	}
	// 264 lines were finished (3, "partial"+"a", then b, c, ...): the
	// ring keeps the last 256, from the loop's 6th ("f") to its last.
	if all[0] != "f" || all[logKeep-1] != string(rune('a'+(logKeep+4)%26)) {
		t.Errorf("ring holds %q .. %q", all[0], all[logKeep-1])
	}
}
