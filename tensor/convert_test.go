package tensor_test

// Properties that need no ggml: known conversions, error bounds, size
// checks, independence from the output buffer's old contents.

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"llamago/tensor"
)

var supported = []tensor.Type{
	tensor.F32, tensor.F16, tensor.BF16,
	tensor.Q4_0, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1, tensor.Q8_0,
	tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K, tensor.Q8_K,
}

func bits(f float32) uint32 { return math.Float32bits(f) }

func TestFP16KnownValues(t *testing.T) {
	// IEEE 754 binary16 encodings.
	tests := []struct {
		f float32
		h uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{0.5, 0x3800},
		{65504, 0x7bff},                       // largest finite
		{65519.99, 0x7bff},                    // just below the halfway point to 65536
		{65520, 0x7c00},                       // halfway rounds to even: infinity
		{1e6, 0x7c00},                         // overflow
		{-1e6, 0xfc00},                        // overflow
		{float32(math.Ldexp(1, -14)), 0x0400}, // smallest normal
		{float32(math.Ldexp(1, -24)), 0x0001}, // smallest subnormal
		{float32(math.Ldexp(1, -25)), 0x0000}, // halfway to it: ties to even (zero)
		{float32(math.Ldexp(1.5, -25)), 0x0001},
		{float32(math.Ldexp(3, -25)), 0x0002},    // 1.5 ulp: ties to even (2)
		{float32(math.Ldexp(5, -25)), 0x0002},    // 2.5 ulp: ties to even (2)
		{float32(math.Ldexp(1023, -24)), 0x03ff}, // largest subnormal
		{1 + 1.0/2048, 0x3c00},                   // tie between 1 and 1+2^-10: even
		{1 + 3.0/2048, 0x3c02},                   // tie: even upwards
		{0.1, 0x2e66},
		{float32(1.0 / 3), 0x3555},
		{float32(math.Inf(1)), 0x7c00},
		{float32(math.Inf(-1)), 0xfc00},
		{float32(math.NaN()), 0x7e00},
		{math.Float32frombits(0xff800001), 0xfe00}, // negative signalling NaN: canonical, sign kept
	}
	for _, tt := range tests {
		if got := tensor.Float32ToFP16(tt.f); got != tt.h {
			t.Errorf("Float32ToFP16(%g [%08x]) = %04x, want %04x", tt.f, bits(tt.f), got, tt.h)
		}
		if tt.f != tt.f || tt.h&0x7c00 == 0x7c00 || tt.f == 65519.99 || tt.f == 65520 {
			continue
		}
		// Exactly representable values come back exactly.
		back := tensor.FP16ToFloat32(tt.h)
		if tensor.Float32ToFP16(back) != tt.h {
			t.Errorf("FP16ToFloat32(%04x) = %g does not convert back", tt.h, back)
		}
	}
	for _, tt := range []struct {
		h uint16
		f uint32
	}{
		{0x3c00, 0x3f800000},
		{0x0001, 0x33800000}, // 2^-24
		{0x8001, 0xb3800000},
		{0x03ff, 0x387fc000},
		{0x7bff, 0x477fe000},
		{0x7c00, 0x7f800000},
		{0xfc00, 0xff800000},
		{0x7e00, 0x7fc00000},
		{0x7c01, 0x7fc02000}, // signalling NaN comes out quiet, payload kept
	} {
		if got := bits(tensor.FP16ToFloat32(tt.h)); got != tt.f {
			t.Errorf("FP16ToFloat32(%04x) = %08x, want %08x", tt.h, got, tt.f)
		}
	}
}

func TestFP16AllHalvesRoundTrip(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := tensor.FP16ToFloat32(uint16(h))
		want := uint16(h)
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			want = uint16(h)&0x8000 | 0x7e00 // NaNs become the canonical NaN
		}
		if got := tensor.Float32ToFP16(f); got != want {
			t.Fatalf("%04x -> %g -> %04x", h, f, got)
		}
		// Monotonic: the next finite half is a larger float.
		if h < 0x7bff {
			if next := tensor.FP16ToFloat32(uint16(h + 1)); !(next > f) {
				t.Fatalf("FP16ToFloat32 not increasing at %04x", h)
			}
		}
	}
}

func TestBF16KnownValues(t *testing.T) {
	tests := []struct {
		f uint32 // float32 bits
		h uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x40490fdb, 0x4049}, // pi rounds down
		{0x3f808000, 0x3f80}, // tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd rounds up
		{0x3f808001, 0x3f81}, // above the tie
		{0x7f7fffff, 0x7f80}, // max float32 rounds to infinity
		{0x7f800000, 0x7f80}, // infinity
		{0x7f800001, 0x7fc0}, // signalling NaN forced quiet
		{0xffc12345, 0xffc1}, // quiet NaN keeps sign and payload
		{0x00000001, 0x0000}, // smallest subnormal: not flushed, rounds to zero
		{0x00008000, 0x0000}, // tie to even
		{0x00018000, 0x0002}, // tie to even, upwards
		{0x80000000, 0x8000}, // negative zero
	}
	for _, tt := range tests {
		f := math.Float32frombits(tt.f)
		if got := tensor.Float32ToBF16(f); got != tt.h {
			t.Errorf("Float32ToBF16(%08x) = %04x, want %04x", tt.f, got, tt.h)
		}
	}
	for h := 0; h < 1<<16; h++ {
		f := tensor.BF16ToFloat32(uint16(h))
		if bits(f) != uint32(h)<<16 {
			t.Fatalf("BF16ToFloat32(%04x) = %08x", h, bits(f))
		}
		if f == f && tensor.Float32ToBF16(f) != uint16(h) {
			t.Fatalf("bf16 %04x does not round trip", h)
		}
	}
}

func TestPlainRoundTrip(t *testing.T) {
	xs := []float32{0, 1, -1, 0.1, 3.14159, -65504, 1e-7, 1e30, float32(math.Inf(1)), math.Float32frombits(0x7fc00001)}
	buf := make([]byte, 4*len(xs))
	if err := tensor.Quantize(tensor.F32, xs, buf); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, len(xs))
	if err := tensor.Dequantize(tensor.F32, buf, got); err != nil {
		t.Fatal(err)
	}
	for i := range xs {
		if bits(got[i]) != bits(xs[i]) {
			t.Errorf("F32 %d: %08x, want %08x", i, bits(got[i]), bits(xs[i]))
		}
	}
	if !bytes.Equal(buf[4:8], []byte{0, 0, 0x80, 0x3f}) {
		t.Errorf("F32 is not stored little-endian: % x", buf[4:8])
	}
	h := make([]byte, 2*len(xs))
	if err := tensor.QuantizeF16(xs, h); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h[2:4], []byte{0x00, 0x3c}) {
		t.Errorf("F16 is not stored little-endian: % x", h[2:4])
	}
	if err := tensor.QuantizeBF16(xs, h); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h[2:4], []byte{0x80, 0x3f}) {
		t.Errorf("BF16 is not stored little-endian: % x", h[2:4])
	}
}

// roundTrip quantizes x to t and back.
func roundTrip(t *testing.T, typ tensor.Type, x []float32) []float32 {
	t.Helper()
	q := make([]byte, len(x)/typ.BlockSize()*typ.TypeSize())
	if err := tensor.Quantize(typ, x, q); err != nil {
		t.Fatal(err)
	}
	y := make([]float32, len(x))
	if err := tensor.Dequantize(typ, q, y); err != nil {
		t.Fatal(err)
	}
	return y
}

func TestQuantizationError(t *testing.T) {
	// Bounds on the RMS error relative to the RMS of normal data, from the
	// number of levels: a b-bit code over a block's range (about 4.5
	// sigma for 32 values) leaves an error of about range/(2^b-1)/sqrt(12),
	// with slack for outliers and scale rounding. Also a bound on the worst
	// single error relative to the block's largest magnitude.
	tests := []struct {
		typ         tensor.Type
		maxRelRMS   float64
		maxBlockErr float64
	}{
		{tensor.F16, 0.0005, 0.001},
		{tensor.BF16, 0.004, 0.004},
		{tensor.Q8_0, 0.01, 0.01},
		{tensor.Q8_K, 0.01, 0.01},
		{tensor.Q6_K, 0.03, 0.06},
		{tensor.Q5_0, 0.05, 0.07},
		{tensor.Q5_1, 0.05, 0.06},
		{tensor.Q5_K, 0.05, 0.1},
		{tensor.Q4_0, 0.1, 0.13},
		{tensor.Q4_1, 0.1, 0.1},
		{tensor.Q4_K, 0.1, 0.2},
		{tensor.Q3_K, 0.25, 0.4},
		{tensor.Q2_K, 0.45, 0.8},
	}
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 64*tensor.QK_K)
	for _, tt := range tests {
		t.Run(tt.typ.String(), func(t *testing.T) {
			for _, scale := range []float64{1e-3, 1, 1000} {
				for i := range x {
					x[i] = float32(r.NormFloat64() * scale)
				}
				y := roundTrip(t, tt.typ, x)
				var se, sx float64
				bs := max(tt.typ.BlockSize(), 32)
				for b := 0; b < len(x); b += bs {
					var amax, worst float64
					for i := b; i < b+bs; i++ {
						d := float64(y[i]) - float64(x[i])
						se += d * d
						sx += float64(x[i]) * float64(x[i])
						amax = max(amax, math.Abs(float64(x[i])))
						worst = max(worst, math.Abs(d))
					}
					if worst > tt.maxBlockErr*amax {
						t.Fatalf("scale %g block %d: error %g is more than %g of the block's max %g", scale, b/bs, worst, tt.maxBlockErr, amax)
					}
				}
				if rel := math.Sqrt(se / sx); rel > tt.maxRelRMS {
					t.Errorf("scale %g: relative RMS error %.4f, want <= %g", scale, rel, tt.maxRelRMS)
				}
			}
		})
	}
}

func TestExactlyRepresentable(t *testing.T) {
	// Integer grids that a format holds exactly: the block's extreme sets
	// a scale of 1 (an exact fp16), so every value decodes unchanged.
	grid := func(n int, f func(i int) float32) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = f(i)
		}
		return x
	}
	tests := []struct {
		typ tensor.Type
		x   []float32
	}{
		{tensor.Q8_0, grid(64, func(i int) float32 { return float32(i%32*8 - 127) })},
		{tensor.Q8_K, grid(256, func(i int) float32 { return float32(127 - i%255) })},
		{tensor.Q4_0, grid(64, func(i int) float32 { return float32(i%16 - 8) })},
		{tensor.Q4_1, grid(64, func(i int) float32 { return float32(i % 16) })},
		{tensor.Q5_0, grid(64, func(i int) float32 { return float32(i%32 - 16) })},
		{tensor.Q5_1, grid(64, func(i int) float32 { return float32(i % 32) })},
		{tensor.F16, grid(64, func(i int) float32 { return float32(i-32) * 0.25 })},
		{tensor.BF16, grid(64, func(i int) float32 { return float32(i-32) * 1024 })},
	}
	for _, tt := range tests {
		y := roundTrip(t, tt.typ, tt.x)
		for i := range y {
			if y[i] != tt.x[i] {
				t.Errorf("%s: value %d is %g, want %g", tt.typ, i, y[i], tt.x[i])
				break
			}
		}
	}
}

func TestZerosStayZero(t *testing.T) {
	for _, typ := range supported {
		x := make([]float32, 2*max(typ.BlockSize(), 32))
		y := roundTrip(t, typ, x)
		for i, v := range y {
			if v != 0 {
				t.Errorf("%s: zero input decodes to %g at %d", typ, v, i)
				break
			}
		}
	}
}

func TestQuantizeIgnoresOldOutput(t *testing.T) {
	// The result must not depend on what dst held before, including for
	// all-zero blocks, which some formats special-case.
	r := rand.New(rand.NewPCG(3, 4))
	for _, typ := range supported {
		n := 3 * max(typ.BlockSize(), 32)
		x := make([]float32, n)
		for i := n / 3; i < n; i++ { // first block all zero
			x[i] = float32(r.NormFloat64())
		}
		size := n / typ.BlockSize() * typ.TypeSize()
		clean := make([]byte, size)
		dirty := bytes.Repeat([]byte{0xa5}, size)
		if err := tensor.Quantize(typ, x, clean); err != nil {
			t.Fatal(err)
		}
		if err := tensor.Quantize(typ, x, dirty); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(clean, dirty) {
			t.Errorf("%s: output depends on the old contents of dst", typ)
		}
	}
}

func TestRowsConcatenate(t *testing.T) {
	// Quantizing many rows at once equals quantizing each block alone.
	r := rand.New(rand.NewPCG(5, 6))
	for _, typ := range supported {
		bs, ts := typ.BlockSize(), typ.TypeSize()
		x := make([]float32, 5*max(bs, 32))
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		all := make([]byte, len(x)/bs*ts)
		if err := tensor.Quantize(typ, x, all); err != nil {
			t.Fatal(err)
		}
		for b := 0; b < len(x)/bs; b++ {
			one := make([]byte, ts)
			if err := tensor.Quantize(typ, x[b*bs:(b+1)*bs], one); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(one, all[b*ts:(b+1)*ts]) {
				t.Errorf("%s: block %d differs when quantized alone", typ, b)
			}
		}
	}
}

func TestPerTypeFunctions(t *testing.T) {
	type pair struct {
		deq func([]byte, []float32) error
		q   func([]float32, []byte) error
	}
	fns := map[tensor.Type]pair{
		tensor.F16: {tensor.DequantizeF16, tensor.QuantizeF16}, tensor.BF16: {tensor.DequantizeBF16, tensor.QuantizeBF16},
		tensor.Q4_0: {tensor.DequantizeQ4_0, tensor.QuantizeQ4_0}, tensor.Q4_1: {tensor.DequantizeQ4_1, tensor.QuantizeQ4_1},
		tensor.Q5_0: {tensor.DequantizeQ5_0, tensor.QuantizeQ5_0}, tensor.Q5_1: {tensor.DequantizeQ5_1, tensor.QuantizeQ5_1},
		tensor.Q8_0: {tensor.DequantizeQ8_0, tensor.QuantizeQ8_0},
		tensor.Q2_K: {tensor.DequantizeQ2_K, tensor.QuantizeQ2_K}, tensor.Q3_K: {tensor.DequantizeQ3_K, tensor.QuantizeQ3_K},
		tensor.Q4_K: {tensor.DequantizeQ4_K, tensor.QuantizeQ4_K}, tensor.Q5_K: {tensor.DequantizeQ5_K, tensor.QuantizeQ5_K},
		tensor.Q6_K: {tensor.DequantizeQ6_K, tensor.QuantizeQ6_K}, tensor.Q8_K: {tensor.DequantizeQ8_K, tensor.QuantizeQ8_K},
	}
	r := rand.New(rand.NewPCG(7, 8))
	for typ, f := range fns {
		x := make([]float32, 2*max(typ.BlockSize(), 32))
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		size := len(x) / typ.BlockSize() * typ.TypeSize()
		a, b := make([]byte, size), make([]byte, size)
		if err := tensor.Quantize(typ, x, a); err != nil {
			t.Fatal(err)
		}
		if err := f.q(x, b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: per-type quantizer differs from Quantize", typ)
		}
		ya, yb := make([]float32, len(x)), make([]float32, len(x))
		if err := tensor.Dequantize(typ, a, ya); err != nil {
			t.Fatal(err)
		}
		if err := f.deq(a, yb); err != nil {
			t.Fatal(err)
		}
		for i := range ya {
			if bits(ya[i]) != bits(yb[i]) {
				t.Errorf("%s: per-type dequantizer differs from Dequantize", typ)
				break
			}
		}
		// And they check sizes too.
		if err := f.deq(a[:size-1], yb); err == nil {
			t.Errorf("%s: per-type dequantizer accepted a short source", typ)
		}
		if err := f.q(x[:len(x)-1], b); err == nil && typ.BlockSize() > 1 {
			t.Errorf("%s: per-type quantizer accepted a partial block", typ)
		}
	}
}

func TestSizeErrors(t *testing.T) {
	tests := []struct {
		name    string
		typ     tensor.Type
		nElems  int
		nBytes  int
		wantErr string
	}{
		{"partial block", tensor.Q4_0, 31, 18, "whole number"},
		{"partial super-block", tensor.Q4_K, 255, 144, "whole number"},
		{"short buffer", tensor.Q4_0, 32, 17, "take 18 bytes, got 17"},
		{"long buffer", tensor.Q6_K, 256, 211, "take 210 bytes, got 211"},
		{"short plain", tensor.F16, 3, 5, "take 6 bytes"},
		{"empty buffer", tensor.Q8_0, 32, 0, "take 34 bytes"},
		{"unsupported", tensor.IQ2_XXS, 256, 66, "IQ2_XXS"},
		{"unknown", tensor.Type(999), 1, 1, "type(999)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			derr := tensor.Dequantize(tt.typ, make([]byte, tt.nBytes), make([]float32, tt.nElems))
			qerr := tensor.Quantize(tt.typ, make([]float32, tt.nElems), make([]byte, tt.nBytes))
			for _, err := range []error{derr, qerr} {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v, want one containing %q", err, tt.wantErr)
				}
			}
		})
	}
	for _, typ := range []tensor.Type{tensor.IQ2_XXS, tensor.Q8_1, tensor.I8, tensor.Type(999)} {
		if err := tensor.Dequantize(typ, nil, nil); !errors.Is(err, tensor.ErrUnsupported) {
			t.Errorf("%s: Dequantize error %v does not wrap ErrUnsupported", typ, err)
		}
		if err := tensor.Quantize(typ, nil, nil); !errors.Is(err, tensor.ErrUnsupported) {
			t.Errorf("%s: Quantize error %v does not wrap ErrUnsupported", typ, err)
		}
	}
	// Empty input is a valid zero blocks.
	for _, typ := range supported {
		if err := tensor.Dequantize(typ, nil, nil); err != nil {
			t.Errorf("%s: empty Dequantize: %v", typ, err)
		}
		if err := tensor.Quantize(typ, nil, nil); err != nil {
			t.Errorf("%s: empty Quantize: %v", typ, err)
		}
	}
}

func TestSupportedMatchesTypeTable(t *testing.T) {
	// Every type the table calls supported converts, and no other.
	want := map[tensor.Type]bool{}
	for _, typ := range supported {
		want[typ] = true
	}
	for id := tensor.Type(0); id < 64; id++ {
		if id.Supported() != want[id] {
			t.Errorf("%s: Supported() = %v, but the converters say %v", id, id.Supported(), want[id])
		}
		bs := max(id.BlockSize(), 1)
		err := tensor.Dequantize(id, make([]byte, id.TypeSize()), make([]float32, bs))
		if (err == nil) != want[id] {
			t.Errorf("%s: Dequantize of one block: %v", id, err)
		}
	}
}

// FuzzDequantize decodes arbitrary bytes as each type: it must never
// panic, and must be deterministic.
func FuzzDequantize(f *testing.F) {
	f.Add(uint8(3), make([]byte, 18))
	f.Add(uint8(10), bytes.Repeat([]byte{0xff}, 292))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		typ := supported[int(which)%len(supported)]
		nb := len(data) / typ.TypeSize()
		src := data[:nb*typ.TypeSize()]
		a, b := make([]float32, nb*typ.BlockSize()), make([]float32, nb*typ.BlockSize())
		if err := tensor.Dequantize(typ, src, a); err != nil {
			t.Fatal(err)
		}
		if err := tensor.Dequantize(typ, src, b); err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if bits(a[i]) != bits(b[i]) {
				t.Fatalf("not deterministic at %d", i)
			}
		}
		// A wrong size is an error, not a panic.
		if len(data) > 0 && len(data)%typ.TypeSize() != 0 {
			if err := tensor.Dequantize(typ, data, a); err == nil {
				t.Fatalf("%d bytes accepted for %d values", len(data), len(a))
			}
		}
	})
}

// FuzzQuantize encodes arbitrary float32 bit patterns (NaN, infinities
// and subnormals included) as each type: it must never panic.
func FuzzQuantize(f *testing.F) {
	f.Add(uint8(9), bytes.Repeat([]byte{0, 0, 0xc0, 0x7f}, 256))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		typ := supported[int(which)%len(supported)]
		bs := typ.BlockSize()
		n := len(data) / 4 / bs * bs
		x := make([]float32, n)
		for i := range x {
			x[i] = math.Float32frombits(uint32(data[4*i]) | uint32(data[4*i+1])<<8 | uint32(data[4*i+2])<<16 | uint32(data[4*i+3])<<24)
		}
		out := make([]byte, n/bs*typ.TypeSize())
		if err := tensor.Quantize(typ, x, out); err != nil {
			t.Fatal(err)
		}
		y := make([]float32, n)
		if err := tensor.Dequantize(typ, out, y); err != nil {
			t.Fatal(err)
		}
	})
}
