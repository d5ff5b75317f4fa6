// Package probe observes the forward pass: named probe points, a filter
// that picks which ones to record, sinks that print statistics or collect
// tensors into a safetensors dump, and a diff of two dumps that names the
// first probe at which two runs part.
//
// # Probe names
//
// The model emits, per token position and in forward order: embd, then per
// layer i blk.{i}.attn_norm, .q, .k, .v, .q_rope, .k_rope, .attn_scores,
// .attn_probs, .attn_out, .attn_proj, .ffn_inp, .ffn_norm, .ffn_gate,
// .ffn_up, .ffn_act, .ffn_out, .out, and finally output_norm and logits.
// Names follow GGUF's tensor naming so that users recognise them, and every
// backend (CPU, float64 oracle, CUDA, llama.cpp through its eval callback)
// produces the same names, which is what makes any two runs comparable.
//
// The data of one emission is the tensor for ONE position, row-major, with
// these shapes (the contract between the model, the llama.cpp converter in
// llamacpp_names.go and Diff, which refuses mismatched shapes):
//
//	embd, attn_norm, attn_proj, ffn_inp, ffn_norm,
//	ffn_out, out, output_norm               [n_embd]
//	q, q_rope                               [n_head, head_dim]
//	k, k_rope, v                            [n_head_kv, head_dim]
//	attn_scores, attn_probs                 [n_head, n_kv] with n_kv = pos+1
//	                                        (the keys the position may see)
//	attn_out (heads concatenated)           [n_head*head_dim]
//	ffn_gate, ffn_up, ffn_act               [n_ff]
//	logits                                  [n_vocab]
//
// ffn_out is the down projection before the residual add; out is the layer
// output after it. attn_scores are the scaled scores (q·k times the
// attention scale, 1/sqrt(head_dim) for llama) before the softmax.
//
// # Cost when unused
//
// A nil *Set means "no probes": every method is nil-safe and returns at
// once, so the model calls s.Wants(name) before it copies anything back
// from a backend and pays a nil check otherwise. Names for layers are
// precomputed once per model with NewLayerNames, so the hot path never
// formats strings.
package probe
