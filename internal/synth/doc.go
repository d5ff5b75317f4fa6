// Package synth writes synthetic llama models for tests: GGUF files in
// TinyLlama-1.1B's exact shape (or a small one) with LLaMA's real
// 32,000-token vocabulary, TinyLlama's chat template and deterministic
// pseudo-random weights, in any type package quantize produces (F32, F16,
// Q8_0, Q4_0, Q4_K_M, Q6_K, ...). They let llamago be compared with
// llama.cpp at full size without downloading a model.
//
// Write writes one file; Cached keeps files in a folder
// ($LLAMAGO_SYNTH_CACHE, by default llamago/synth under the user's cache
// folder), keyed by the generator version, shape, seed, scales and
// vocabulary, and reuses them: the F32 file (4.4 GB at TinyLlama's shape)
// is written once and every other type is quantized from it, exactly as
// llama-quantize would quantize it.
//
// # Weights
//
// Each tensor row has its own random stream (SplitMix64 keyed by the seed,
// the tensor's name and the row), turned into normal values by summing four
// 16-bit uniforms, so files are identical whatever the number of threads
// and a billion values take seconds. The sizes (Scales) were chosen with
// llama.cpp as the judge, on a chat-formatted English prompt of 103 tokens:
//
//   - N(0, 0.02) everywhere, as in the issue: the output is nearly uniform
//     (entropy 9.96 nats of 10.37) yet rounding moves it: the F16 and Q8_0
//     files pick different top tokens at 13 of 103 positions.
//   - DefaultScales (embeddings σ 0.35, attention scores σ ≈ 2, blocks
//     adding a tenth of a unit each, logits σ 4): entropy 4.1 nats, top-1
//     probability 0.26, KL(F16 ‖ Q8_0) 0.003 per position at TinyLlama's
//     shape (the "about 0.004"), 0.0008 at the small shape.
//
// Even so, a random 22-layer model amplifies last-bit differences:
// wherever two engines round one activation of an 8-bit block (or one F16
// cache entry) differently, the difference grows through the following
// layers. llama.cpp's own AVX2 and AVX-512 builds differ on the quantized
// TinyLlama-shaped files by a KL divergence of 0.0015 (Q8_0) to 0.0037
// (Q6_K); smaller block gains lower that and KL(F16 ‖ Q8_0) together,
// about 2 to 1, so no choice of scales separates them. Comparisons of
// quantized types at that depth should be read against llama.cpp's own
// spread (see engine's TestSynthKLD).
package synth
