package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrTruncated is wrapped by errors about a field that runs past the end of
// the data.
var ErrTruncated = errors.New("unexpected end of data")

// FormatError describes a field of the file that is malformed.
type FormatError struct {
	Offset int64  // byte offset of the field in the file
	Field  string // which field, e.g. `tensor info 3 ("blk.0.attn_q.weight"): dimension 1`
	Err    error  // what is wrong with it
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("gguf: %s at byte %d: %v", e.Field, e.Offset, e.Err)
}

func (e *FormatError) Unwrap() error { return e.Err }

// prefix puts context in front of the field name of a FormatError that a
// nested decoder returned, so that it reads from the outside in.
func prefix(err error, format string, args ...any) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		fe.Field = fmt.Sprintf(format, args...) + ": " + fe.Field
	}
	return err
}

// readBuf is a cursor over the file. Each method consumes one field, so
// that decoding reads like the format table. Nothing here trusts a length
// read from the file: every read is checked against the bytes left first.
type readBuf struct {
	b   []byte // the whole file
	off int    // offset of the next unread byte
}

func (r *readBuf) left() int { return len(r.b) - r.off }

// need fails unless n more bytes are left.
func (r *readBuf) need(n uint64) error {
	if n > uint64(r.left()) {
		return fmt.Errorf("need %d bytes, %d left: %w", n, r.left(), ErrTruncated)
	}
	return nil
}

// bytes consumes n bytes, which the caller has checked with need.
func (r *readBuf) bytes(n int) []byte {
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

func (r *readBuf) uint32() (uint32, error) {
	if err := r.need(4); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(r.bytes(4)), nil
}

func (r *readBuf) uint64() (uint64, error) {
	if err := r.need(8); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(r.bytes(8)), nil
}

// stringBytes consumes a length-prefixed string and returns its bytes,
// which alias the file.
func (r *readBuf) stringBytes() ([]byte, error) {
	n, err := r.uint64()
	if err != nil {
		return nil, fmt.Errorf("string length: %w", err)
	}
	if n > uint64(r.left()) {
		return nil, fmt.Errorf("string length %d exceeds the %d bytes left: %w", n, r.left(), ErrTruncated)
	}
	return r.bytes(int(n)), nil
}

func (r *readBuf) string() (string, error) {
	b, err := r.stringBytes()
	return string(b), err
}

// fieldError makes a FormatError for the field that starts at off.
func fieldError(off int, field string, err error) error {
	return &FormatError{Offset: int64(off), Field: field, Err: err}
}
