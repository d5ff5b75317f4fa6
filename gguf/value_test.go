package gguf_test

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"llamago/gguf"
)

// accessorFile has one key per value shape the accessors must accept or
// refuse.
func accessorFile(t *testing.T) *gguf.File {
	w := gguf.NewWriter()
	for _, kv := range allValues() {
		w.Set(kv.Key, kv.Value)
	}
	w.Set("i32.neg", gguf.Int32(-1))
	w.Set("u64.small", gguf.Uint64(42))
	w.Set("u8s.small", gguf.Uint8s([]uint8{1, 2, 3}))
	w.Set("i64s.big", gguf.Int64s([]int64{1, math.MaxInt32 + 1}))
	f, err := gguf.Parse(writeBytes(t, w))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestAccessors(t *testing.T) {
	f := accessorFile(t)
	tests := []struct {
		name string
		get  func() (any, error)
		want any    // when the error is nil
		err  string // the whole message, when an error is expected
	}{
		{"string", func() (any, error) { return f.String("str") }, "héllo\x00world", ""},
		{"string missing", func() (any, error) { return f.String("x") }, nil, `gguf: key "x" not found`},
		{"string of float32", func() (any, error) { return f.String("f32") }, nil, `gguf: key "f32" is float32, not string`},
		{"string of array", func() (any, error) { return f.String("a.str") }, nil, `gguf: key "a.str" is array of string, not string`},
		{"bool", func() (any, error) { return f.Bool("bool.true") }, true, ""},
		{"bool of uint8", func() (any, error) { return f.Bool("u8") }, nil, `gguf: key "u8" is uint8, not bool`},
		{"uint32 of uint32", func() (any, error) { return f.Uint32("u32") }, uint32(4_000_000_000), ""},
		{"uint32 of uint8", func() (any, error) { return f.Uint32("u8") }, uint32(200), ""},
		{"uint32 of uint64 that fits", func() (any, error) { return f.Uint32("u64.small") }, uint32(42), ""},
		{"uint32 of big uint64", func() (any, error) { return f.Uint32("u64") }, nil, `gguf: key "u64" is uint64 18446744073709551615, which does not fit uint32`},
		{"uint32 of negative int32", func() (any, error) { return f.Uint32("i32.neg") }, nil, `gguf: key "i32.neg" is int32 -1, which does not fit uint32`},
		{"uint32 of float32", func() (any, error) { return f.Uint32("f32") }, nil, `gguf: key "f32" is float32, not uint32`},
		{"uint64 of int16", func() (any, error) { return f.Uint64("i16") }, nil, `gguf: key "i16" is int16 -30000, which does not fit uint64`},
		{"int32 of int8", func() (any, error) { return f.Int32("i8") }, int32(-100), ""},
		{"int32 of uint32", func() (any, error) { return f.Int32("u32") }, nil, `gguf: key "u32" is uint32 4000000000, which does not fit int32`},
		{"int64 of min int64", func() (any, error) { return f.Int64("i64") }, int64(math.MinInt64), ""},
		{"int64 of max uint64", func() (any, error) { return f.Int64("u64") }, nil, `gguf: key "u64" is uint64 18446744073709551615, which does not fit int64`},
		{"float32", func() (any, error) { return f.Float32("f32") }, float32(1e-5), ""},
		{"float32 of float64", func() (any, error) { return f.Float32("f64") }, float32(math.Pi), ""},
		{"float64 of float32", func() (any, error) { return f.Float64("f32") }, float64(float32(1e-5)), ""},
		{"float32 of uint32", func() (any, error) { return f.Float32("u32") }, nil, `gguf: key "u32" is uint32, not float32`},
		{"strings", func() (any, error) { return f.Strings("a.str") }, []string{"", "a", "▁the", "<0x0A>"}, ""},
		{"strings of int32s", func() (any, error) { return f.Strings("a.i32") }, nil, `gguf: key "a.i32" is array of int32, not array of string`},
		{"strings of string", func() (any, error) { return f.Strings("str") }, nil, `gguf: key "str" is string, not array of string`},
		{"float32s", func() (any, error) { return f.Float32s("a.f32") }, []float32{0.25, -1, float32(math.Inf(1))}, ""},
		{"float32s of float64s", func() (any, error) { return f.Float32s("a.f64") }, []float32{float32(math.SmallestNonzeroFloat64)}, ""},
		{"float32s of strings", func() (any, error) { return f.Float32s("a.str") }, nil, `gguf: key "a.str" is array of string, not array of float32`},
		{"int32s", func() (any, error) { return f.Int32s("a.i32") }, []int32{-1, 2, -3}, ""},
		{"int32s of uint8s", func() (any, error) { return f.Int32s("u8s.small") }, []int32{1, 2, 3}, ""},
		{"int32s of big int64s", func() (any, error) { return f.Int32s("i64s.big") }, nil, `gguf: key "i64s.big" is array of int64 whose element 1 is 2147483648, which does not fit array of int32`},
		{"int32s of bools", func() (any, error) { return f.Int32s("a.bool") }, nil, `gguf: key "a.bool" is array of bool, not array of int32`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.get()
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Errorf("error %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

func TestAccessorErrorTypes(t *testing.T) {
	f := accessorFile(t)
	if _, err := f.Uint32("absent"); !errors.Is(err, gguf.ErrKeyNotFound) {
		t.Errorf("%v does not match ErrKeyNotFound", err)
	}
	_, err := f.String("u8")
	var ve *gguf.ValueError
	if !errors.As(err, &ve) || ve.Key != "u8" || ve.Found != "uint8" || ve.Want != "string" {
		t.Errorf("%#v", err)
	}
	if !f.Has("u8") || f.Has("absent") {
		t.Error("Has")
	}
	if v, ok := f.Get("a.nested"); !ok || v.Len() != 3 || v.Elem != gguf.TypeArray {
		t.Errorf("Get(a.nested) = %v, %v", v, ok)
	}
}

func TestValueAccessors(t *testing.T) {
	v := gguf.Int16s([]int16{-5, 7})
	if v.Len() != 2 || v.TypeName() != "array of int16" {
		t.Errorf("Len %d, TypeName %s", v.Len(), v.TypeName())
	}
	if x, err := v.Index(1).Uint32(); x != 7 || err != nil {
		t.Errorf("Index(1).Uint32() = %d, %v", x, err)
	}
	if _, err := v.Index(0).Uint32(); err == nil || err.Error() != "gguf: value is int16 -5, which does not fit uint32" {
		t.Errorf("Index(0).Uint32(): %v", err)
	}
	if got := v.Index(2); got != (gguf.Value{}) {
		t.Errorf("Index out of range = %v", got)
	}
	if s, err := gguf.String("x").String(); s != "x" || err != nil {
		t.Errorf("String: %q, %v", s, err)
	}
	if _, err := gguf.Uint8(1).Values(); err == nil {
		t.Error("Values of a scalar")
	}
	for _, tt := range []struct {
		v    gguf.Value
		want any
	}{
		{gguf.Uint8(1), uint8(1)},
		{gguf.Int8(-1), int8(-1)},
		{gguf.Uint16(2), uint16(2)},
		{gguf.Int16(-2), int16(-2)},
		{gguf.Uint32(3), uint32(3)},
		{gguf.Int32(-3), int32(-3)},
		{gguf.Float32(0.5), float32(0.5)},
		{gguf.Float64(0.5), float64(0.5)},
		{gguf.Bool(true), true},
		{gguf.String("s"), "s"},
		{gguf.Uint64(1 << 40), uint64(1 << 40)},
		{gguf.Int64(-1 << 40), int64(-1 << 40)},
		{gguf.Strings([]string{"a"}), []string{"a"}},
	} {
		if got := tt.v.Any(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Any() = %#v, want %#v", got, tt.want)
		}
	}
}
