// Package quantize converts a GGUF model to another weight type, the way
// llama.cpp's llama_model_quantize does without an importance matrix, so
// that the output file is the one llama-quantize writes, byte for byte.
//
// A Target names the result (see ParseTarget): f32, f16, bf16, the legacy
// types q4_0, q4_1, q5_0, q5_1 and q8_0, llama.cpp's k-quant mixes q3_k_s,
// q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s and q5_k_m, and the plain k-types
// q2_k, q3_k, q4_k, q5_k and q6_k. The plain k-types put every quantizable
// weight in that one type: they are what llama-quantize --pure writes for
// Q2_K, Q3_K, Q4_K, Q5_K and Q6_K (beware that without --pure llama.cpp
// reads Q3_K, Q4_K and Q5_K as aliases of the _M mixes).
//
// The choice of each tensor's type follows llama.cpp's rules:
//
//   - Only 2-D and larger tensors whose names end in "weight" are
//     converted, except norms and a list of small or special tensors; the
//     rest (1-D tensors, norms, biases) are copied as they are.
//   - A mix picks a type per tensor from its role and layer: output.weight
//     (and token_embd.weight when the output shares it) gets Q6_K, some
//     attn_v and ffn_down layers get more bits (use_more_bits), and so on;
//     the legacy targets are mixes too (their output.weight is Q6_K).
//   - A type whose blocks do not divide a tensor's rows falls back:
//     Q2_K and Q3_K to Q4_0, Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to Q8_0, and
//     to F16 when even 32-element blocks do not fit.
//
// Tensors are written in llama.cpp's order (by layer, then by name), the
// metadata is copied with general.quantization_version and
// general.file_type (the llama_ftype) moved to the end, and split keys are
// dropped. Run streams: it converts one tensor at a time, in slabs of rows
// spread over worker goroutines, and writes each slab as it is done.
//
// Input tensors may be F32, F16 or BF16; already quantized tensors are
// converted only with Options.AllowRequantize, as llama.cpp asks. Like
// llama.cpp, a NaN or infinity in the input, or a scale that overflows
// fp16 in the output, is an error.
//
// Not offered: llama.cpp's Q2_K and Q2_K_S mixes, the IQ, TQ and MXFP4
// types, importance matrices, and llama-quantize's per-tensor overrides.
// One deliberate difference: an input whose general.alignment is not 32
// keeps that alignment, where llama.cpp writes the key but aligns to 32
// (a file its own reader rejects).
package quantize
