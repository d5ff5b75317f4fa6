// Package gguf reads and writes GGUF files, the container of ggml models:
// typed metadata (key-value pairs), then tensor infos (name, shape, ggml
// type, offset), then the tensor data, aligned.
//
// The reader memory-maps the file read-only and validates every field
// before it trusts it: counts and lengths are checked against the bytes
// left before anything is allocated by them, shapes against int64
// overflow, tensor offsets against the alignment and the data section.
// A malformed file gives a *FormatError naming the field and its byte
// offset, never a panic. It reads versions 2 and 3 (they differ only in
// that version 3 may be big-endian, which llamago refuses) and follows
// llama.cpp's gguf.cpp in what it accepts, with these differences:
// arrays of arrays are read (up to 8 deep; gguf.cpp refuses them), tensors
// need at least one dimension, and tensor data need not be packed in file
// order, only aligned and inside the file.
//
// The writer produces version 3 files as llama.cpp's writer lays them out.
package gguf
