package gguf

import (
	"errors"
	"fmt"
	"math"
)

// ErrKeyNotFound is matched (errors.Is) by the error of a typed accessor
// for a key the file does not have.
var ErrKeyNotFound = errors.New("gguf: key not found")

type keyNotFoundError struct{ key string }

func (e *keyNotFoundError) Error() string        { return fmt.Sprintf("gguf: key %q not found", e.key) }
func (e *keyNotFoundError) Is(target error) bool { return target == ErrKeyNotFound }

// Get returns the value of key.
func (f *File) Get(key string) (Value, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return Value{}, false
	}
	return f.KV[i].Value, true
}

// Has reports whether the file has key.
func (f *File) Has(key string) bool {
	_, ok := f.kvIndex[key]
	return ok
}

func (f *File) lookup(key string) (Value, error) {
	v, ok := f.Get(key)
	if !ok {
		return Value{}, &keyNotFoundError{key}
	}
	return v, nil
}

// The typed accessors below fail with `gguf: key "x" not found` (matching
// ErrKeyNotFound) or with a *ValueError that names the key and the type
// found, e.g. `gguf: key "x" is float32, not string`.

// String returns the string value of key.
func (f *File) String(key string) (string, error) {
	v, err := f.lookup(key)
	if err != nil {
		return "", err
	}
	return v.asString(key)
}

// Bool returns the bool value of key.
func (f *File) Bool(key string) (bool, error) {
	v, err := f.lookup(key)
	if err != nil {
		return false, err
	}
	return v.asBool(key)
}

// Uint32 returns the value of key, which may have any integer type as long
// as the value fits a uint32 (converters disagree on the integer types of
// counts).
func (f *File) Uint32(key string) (uint32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	x, err := v.asUint(math.MaxUint32, "uint32", key)
	return uint32(x), err
}

// Uint64 returns the value of key, which may have any integer type as long
// as the value is not negative.
func (f *File) Uint64(key string) (uint64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	return v.asUint(math.MaxUint64, "uint64", key)
}

// Int32 returns the value of key, which may have any integer type as long
// as the value fits an int32.
func (f *File) Int32(key string) (int32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	x, err := v.asInt(math.MinInt32, math.MaxInt32, "int32", key)
	return int32(x), err
}

// Int64 returns the value of key, which may have any integer type as long
// as the value fits an int64.
func (f *File) Int64(key string) (int64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	return v.asInt(math.MinInt64, math.MaxInt64, "int64", key)
}

// Float32 returns the value of key, a float32 or a float64 (converted).
func (f *File) Float32(key string) (float32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	x, err := v.asFloat("float32", key)
	return float32(x), err
}

// Float64 returns the value of key, a float32 (converted) or a float64.
func (f *File) Float64(key string) (float64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	return v.asFloat("float64", key)
}

// Strings returns the array of strings of key. The slice is shared: do not
// modify it.
func (f *File) Strings(key string) ([]string, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	return v.asStrings(key)
}

// Float32s returns the array of float32 of key (shared: do not modify it),
// or its array of float64 converted.
func (f *File) Float32s(key string) ([]float32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	return v.asFloat32s(key)
}

// Int32s returns the array of int32 of key (shared: do not modify it), or
// its array of another integer type converted when every element fits.
func (f *File) Int32s(key string) ([]int32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	return v.asInt32s(key)
}

// Tensor returns the info of the tensor called name.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.tensorIndex[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// TensorData returns the bytes of a tensor of this file: a slice of the
// file's bytes, not a copy, valid until Close. It returns nil for an info
// whose range is not inside the data section (one from another file).
func (f *File) TensorData(ti *TensorInfo) []byte {
	size := uint64(len(f.data))
	start := f.DataOffset + ti.Offset
	if start < f.DataOffset || start > size || ti.Size > size-start {
		return nil
	}
	return f.data[start : start+ti.Size : start+ti.Size]
}

// CheckSupported returns an error when the file has no tensor called name,
// or an *UnsupportedTypeError when llamago cannot convert its type.
func (f *File) CheckSupported(name string) error {
	ti, ok := f.Tensor(name)
	if !ok {
		return fmt.Errorf("gguf: tensor %q not found", name)
	}
	return ti.CheckSupported()
}
