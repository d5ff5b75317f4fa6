package gguf

import (
	"fmt"
	"math"
)

// ValueType is the type id of a metadata value, as stored in the file
// (gguf.h, enum gguf_type).
type ValueType uint32

// The GGUF value types.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{
	TypeUint8:   "uint8",
	TypeInt8:    "int8",
	TypeUint16:  "uint16",
	TypeInt16:   "int16",
	TypeUint32:  "uint32",
	TypeInt32:   "int32",
	TypeFloat32: "float32",
	TypeBool:    "bool",
	TypeString:  "string",
	TypeArray:   "array",
	TypeUint64:  "uint64",
	TypeInt64:   "int64",
	TypeFloat64: "float64",
}

// String returns the Go-style name of the type ("uint32", "array"), or
// "type(N)" for an id GGUF does not define.
func (t ValueType) String() string {
	if t.Valid() {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// Valid reports whether t is one of the 13 GGUF value types.
func (t ValueType) Valid() bool { return t <= TypeFloat64 }

// fixedSize is the encoded size of one value of a fixed-size type, or 0 for
// strings and arrays.
func (t ValueType) fixedSize() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// minSize is the fewest bytes one value of type t can take in a file; it
// bounds element counts before anything is allocated.
func (t ValueType) minSize() int {
	switch t {
	case TypeString:
		return 8 // the length
	case TypeArray:
		return 12 // element type and count
	}
	return t.fixedSize()
}

func (t ValueType) isInteger() bool {
	switch t {
	case TypeUint8, TypeInt8, TypeUint16, TypeInt16, TypeUint32, TypeInt32, TypeUint64, TypeInt64:
		return true
	}
	return false
}

func (t ValueType) isSigned() bool {
	return t == TypeInt8 || t == TypeInt16 || t == TypeInt32 || t == TypeInt64
}

// Value is one metadata value: a scalar, a string, or an array.
//
// Arrays keep their elements as one typed Go slice ([]uint8, []int8,
// []uint16, []int16, []uint32, []int32, []float32, []bool, []string,
// []uint64, []int64, []float64), so that a 256k-entry token list is a
// single allocation; an array of arrays holds a []Value whose elements are
// arrays. The zero Value is the uint8 0.
type Value struct {
	Type ValueType // the value's type; TypeArray for arrays
	Elem ValueType // the element type of an array; unused otherwise

	bits uint64 // integers (signed ones sign-extended), bools, float bits
	str  string
	arr  any
}

// Scalar constructors.

// Uint8 returns a uint8 value.
func Uint8(x uint8) Value { return Value{Type: TypeUint8, bits: uint64(x)} }

// Int8 returns an int8 value.
func Int8(x int8) Value { return Value{Type: TypeInt8, bits: uint64(int64(x))} }

// Uint16 returns a uint16 value.
func Uint16(x uint16) Value { return Value{Type: TypeUint16, bits: uint64(x)} }

// Int16 returns an int16 value.
func Int16(x int16) Value { return Value{Type: TypeInt16, bits: uint64(int64(x))} }

// Uint32 returns a uint32 value.
func Uint32(x uint32) Value { return Value{Type: TypeUint32, bits: uint64(x)} }

// Int32 returns an int32 value.
func Int32(x int32) Value { return Value{Type: TypeInt32, bits: uint64(int64(x))} }

// Uint64 returns a uint64 value.
func Uint64(x uint64) Value { return Value{Type: TypeUint64, bits: x} }

// Int64 returns an int64 value.
func Int64(x int64) Value { return Value{Type: TypeInt64, bits: uint64(x)} }

// Float32 returns a float32 value.
func Float32(x float32) Value {
	return Value{Type: TypeFloat32, bits: uint64(math.Float32bits(x))}
}

// Float64 returns a float64 value.
func Float64(x float64) Value { return Value{Type: TypeFloat64, bits: math.Float64bits(x)} }

// Bool returns a bool value.
func Bool(b bool) Value {
	v := Value{Type: TypeBool}
	if b {
		v.bits = 1
	}
	return v
}

// String returns a string value.
func String(s string) Value { return Value{Type: TypeString, str: s} }

// Array constructors. They keep the slice given, without a copy.

func array(elem ValueType, xs any) Value { return Value{Type: TypeArray, Elem: elem, arr: xs} }

// Uint8s returns an array of uint8.
func Uint8s(xs []uint8) Value { return array(TypeUint8, xs) }

// Int8s returns an array of int8.
func Int8s(xs []int8) Value { return array(TypeInt8, xs) }

// Uint16s returns an array of uint16.
func Uint16s(xs []uint16) Value { return array(TypeUint16, xs) }

// Int16s returns an array of int16.
func Int16s(xs []int16) Value { return array(TypeInt16, xs) }

// Uint32s returns an array of uint32.
func Uint32s(xs []uint32) Value { return array(TypeUint32, xs) }

// Int32s returns an array of int32.
func Int32s(xs []int32) Value { return array(TypeInt32, xs) }

// Uint64s returns an array of uint64.
func Uint64s(xs []uint64) Value { return array(TypeUint64, xs) }

// Int64s returns an array of int64.
func Int64s(xs []int64) Value { return array(TypeInt64, xs) }

// Float32s returns an array of float32.
func Float32s(xs []float32) Value { return array(TypeFloat32, xs) }

// Float64s returns an array of float64.
func Float64s(xs []float64) Value { return array(TypeFloat64, xs) }

// Bools returns an array of bool.
func Bools(xs []bool) Value { return array(TypeBool, xs) }

// Strings returns an array of strings.
func Strings(xs []string) Value { return array(TypeString, xs) }

// ArrayOf returns an array whose elements are the arrays given (GGUF allows
// arrays of arrays; llama.cpp's own reader refuses them, so keep them out of
// files meant for llama.cpp). The Writer rejects an element that is not an
// array.
func ArrayOf(arrays ...Value) Value { return array(TypeArray, arrays) }

// Len returns the number of elements of an array, or 0 for a scalar.
func (v Value) Len() int {
	switch a := v.arr.(type) {
	case []uint8:
		return len(a)
	case []int8:
		return len(a)
	case []uint16:
		return len(a)
	case []int16:
		return len(a)
	case []uint32:
		return len(a)
	case []int32:
		return len(a)
	case []float32:
		return len(a)
	case []bool:
		return len(a)
	case []string:
		return len(a)
	case []uint64:
		return len(a)
	case []int64:
		return len(a)
	case []float64:
		return len(a)
	case []Value:
		return len(a)
	}
	return 0
}

// Slice returns an array's elements as their typed Go slice (see Value), or
// nil for a scalar. The slice is shared: do not modify it.
func (v Value) Slice() any {
	if v.Type != TypeArray {
		return nil
	}
	return v.arr
}

// TypeName describes the value's type for messages: "uint32", or
// "array of string" for arrays.
func (v Value) TypeName() string {
	if v.Type == TypeArray {
		return "array of " + v.Elem.String()
	}
	return v.Type.String()
}

// Scalar accessors. Each returns an error naming the type found when the
// value is not of a type it accepts. The File methods of the same names
// do the same for a key, and name the key in their errors.

// String returns a string value.
func (v Value) String() (string, error) { return v.asString("") }

// Bool returns a bool value.
func (v Value) Bool() (bool, error) { return v.asBool("") }

// Uint32 returns an integer value of any integer type, when it fits a uint32.
func (v Value) Uint32() (uint32, error) {
	x, err := v.asUint(math.MaxUint32, "uint32", "")
	return uint32(x), err
}

// Uint64 returns an integer value of any integer type, when it is not
// negative.
func (v Value) Uint64() (uint64, error) { return v.asUint(math.MaxUint64, "uint64", "") }

// Int32 returns an integer value of any integer type, when it fits an int32.
func (v Value) Int32() (int32, error) {
	x, err := v.asInt(math.MinInt32, math.MaxInt32, "int32", "")
	return int32(x), err
}

// Int64 returns an integer value of any integer type, when it fits an int64.
func (v Value) Int64() (int64, error) {
	return v.asInt(math.MinInt64, math.MaxInt64, "int64", "")
}

// Float32 returns a float32 or float64 value as a float32.
func (v Value) Float32() (float32, error) {
	x, err := v.asFloat("float32", "")
	return float32(x), err
}

// Float64 returns a float32 or float64 value as a float64.
func (v Value) Float64() (float64, error) { return v.asFloat("float64", "") }

// Strings returns an array of strings. The slice is shared: do not modify it.
func (v Value) Strings() ([]string, error) { return v.asStrings("") }

// Float32s returns an array of float32 (shared, do not modify) or an array
// of float64 converted to float32.
func (v Value) Float32s() ([]float32, error) { return v.asFloat32s("") }

// Int32s returns an array of int32 (shared, do not modify) or an array of
// another integer type converted, when every element fits an int32.
func (v Value) Int32s() ([]int32, error) { return v.asInt32s("") }

// Values returns the elements of an array of arrays. The slice is shared:
// do not modify it.
func (v Value) Values() ([]Value, error) {
	if a, ok := v.arr.([]Value); ok && v.Type == TypeArray {
		return a, nil
	}
	return nil, v.mismatch("", "array of array")
}

// ValueError is returned by the accessors when a value has another type
// than the one asked for, or does not fit it.
type ValueError struct {
	Key    string // the key, or "" for a Value's own accessors
	Found  string // the value's type, e.g. "float32" or "array of string"
	Want   string // the type asked for
	Detail string // why a value of an accepted type does not fit, or ""
}

func (e *ValueError) Error() string {
	subject := "value"
	if e.Key != "" {
		subject = fmt.Sprintf("key %q", e.Key)
	}
	if e.Detail != "" {
		return fmt.Sprintf("gguf: %s is %s %s, which does not fit %s", subject, e.Found, e.Detail, e.Want)
	}
	return fmt.Sprintf("gguf: %s is %s, not %s", subject, e.Found, e.Want)
}

func (v Value) mismatch(key, want string) error {
	return &ValueError{Key: key, Found: v.TypeName(), Want: want}
}

func (v Value) asString(key string) (string, error) {
	if v.Type != TypeString {
		return "", v.mismatch(key, "string")
	}
	return v.str, nil
}

func (v Value) asBool(key string) (bool, error) {
	if v.Type != TypeBool {
		return false, v.mismatch(key, "bool")
	}
	return v.bits != 0, nil
}

// asUint accepts any integer type whose value lies in [0, max].
func (v Value) asUint(max uint64, want, key string) (uint64, error) {
	if !v.Type.isInteger() {
		return 0, v.mismatch(key, want)
	}
	if (v.Type.isSigned() && int64(v.bits) < 0) || v.bits > max {
		return 0, &ValueError{Key: key, Found: v.Type.String(), Want: want, Detail: v.integerText()}
	}
	return v.bits, nil
}

// asInt accepts any integer type whose value lies in [min, max].
func (v Value) asInt(min, max int64, want, key string) (int64, error) {
	if !v.Type.isInteger() {
		return 0, v.mismatch(key, want)
	}
	x := int64(v.bits)
	if (!v.Type.isSigned() && v.bits > math.MaxInt64) || x < min || x > max {
		return 0, &ValueError{Key: key, Found: v.Type.String(), Want: want, Detail: v.integerText()}
	}
	return x, nil
}

func (v Value) integerText() string {
	if v.Type.isSigned() {
		return fmt.Sprint(int64(v.bits))
	}
	return fmt.Sprint(v.bits)
}

func (v Value) asFloat(want, key string) (float64, error) {
	switch v.Type {
	case TypeFloat32:
		return float64(math.Float32frombits(uint32(v.bits))), nil
	case TypeFloat64:
		return math.Float64frombits(v.bits), nil
	}
	return 0, v.mismatch(key, want)
}

func (v Value) asStrings(key string) ([]string, error) {
	if a, ok := v.arr.([]string); ok && v.Type == TypeArray {
		return a, nil
	}
	return nil, v.mismatch(key, "array of string")
}

func (v Value) asFloat32s(key string) ([]float32, error) {
	if v.Type == TypeArray {
		switch a := v.arr.(type) {
		case []float32:
			return a, nil
		case []float64:
			out := make([]float32, len(a))
			for i, x := range a {
				out[i] = float32(x)
			}
			return out, nil
		}
	}
	return nil, v.mismatch(key, "array of float32")
}

func (v Value) asInt32s(key string) ([]int32, error) {
	if v.Type != TypeArray {
		return nil, v.mismatch(key, "array of int32")
	}
	if a, ok := v.arr.([]int32); ok {
		return a, nil
	}
	if !v.Elem.isInteger() {
		return nil, v.mismatch(key, "array of int32")
	}
	out := make([]int32, v.Len())
	for i := range out {
		x, err := v.Index(i).asInt(math.MinInt32, math.MaxInt32, "int32", "")
		if err != nil {
			return nil, &ValueError{Key: key, Found: v.TypeName(), Want: "array of int32",
				Detail: fmt.Sprintf("whose element %d is %s", i, v.Index(i).integerText())}
		}
		out[i] = int32(x)
	}
	return out, nil
}

// Index returns element i of an array as a Value, or the zero Value when v
// is not an array or i is out of range.
func (v Value) Index(i int) Value {
	if v.Type != TypeArray || i < 0 || i >= v.Len() {
		return Value{}
	}
	switch a := v.arr.(type) {
	case []uint8:
		return Uint8(a[i])
	case []int8:
		return Int8(a[i])
	case []uint16:
		return Uint16(a[i])
	case []int16:
		return Int16(a[i])
	case []uint32:
		return Uint32(a[i])
	case []int32:
		return Int32(a[i])
	case []float32:
		return Float32(a[i])
	case []bool:
		return Bool(a[i])
	case []string:
		return String(a[i])
	case []uint64:
		return Uint64(a[i])
	case []int64:
		return Int64(a[i])
	case []float64:
		return Float64(a[i])
	case []Value:
		return a[i]
	}
	return Value{}
}

// Any returns a scalar as a Go value (uint8 ... float64, bool, string), or an
// array's typed slice; for display and JSON.
func (v Value) Any() any {
	switch v.Type {
	case TypeUint8:
		return uint8(v.bits)
	case TypeInt8:
		return int8(v.bits)
	case TypeUint16:
		return uint16(v.bits)
	case TypeInt16:
		return int16(v.bits)
	case TypeUint32:
		return uint32(v.bits)
	case TypeInt32:
		return int32(v.bits)
	case TypeUint64:
		return v.bits
	case TypeInt64:
		return int64(v.bits)
	case TypeFloat32:
		return math.Float32frombits(uint32(v.bits))
	case TypeFloat64:
		return math.Float64frombits(v.bits)
	case TypeBool:
		return v.bits != 0
	case TypeString:
		return v.str
	case TypeArray:
		return v.arr
	}
	return nil
}
