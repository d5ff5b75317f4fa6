package probe

import (
	"fmt"
	"strconv"
	"strings"
)

// Mapping llama.cpp's graph to our probes.
//
// llama.cpp names graph nodes through its build callback: "name-il" inside
// layer il, plain "name" outside the layers. With the eval callback
// (llama_context_params.cb_eval) a harness sees every node after it is
// computed. For a llama model, this release (node-llama-cpp 3.21.1's
// llama.cpp, stories260K, 3 tokens, flash attention off, F16 KV cache)
// shows per layer, in order (ne lists ggml's dimensions, ne[0] fastest):
//
//	norm-0         RMS_NORM  [64 3]         (before the weight; not a probe)
//	attn_norm-0    MUL       [64 3]         -> blk.0.attn_norm
//	Qcur-0         MUL_MAT   [64 3]         (projection, flat; same values as below)
//	Qcur-0         RESHAPE   [8 8 3]        -> blk.0.q       [head_dim, n_head, n_tokens]
//	Qcur-0         ROPE      [8 8 3]        -> blk.0.q_rope
//	Vcur-0         MUL_MAT   [32 3]         (flat; same values as below)
//	Vcur-0         RESHAPE   [8 4 3]        -> blk.0.v       [head_dim, n_head_kv, n_tokens]
//	Kcur-0         MUL_MAT   [32 3]         (flat)
//	Kcur-0         RESHAPE   [8 4 3]        -> blk.0.k
//	Kcur-0         ROPE      [8 4 3]        -> blk.0.k_rope
//	... views, permutes and SET_ROWS into cache_k_l0 / cache_v_l0 (F16) ...
//	kq-0           MUL_MAT   [256 3 8]      -> blk.0.attn_scores  [n_kv, n_tokens, n_head]
//	kq_soft_max-0  SOFT_MAX  [256 3 8]      -> blk.0.attn_probs   [n_kv, n_tokens, n_head]
//	kqv-0          MUL_MAT   [8 3 8]        (per-head output, [head_dim, n_tokens, n_head])
//	kqv_out-0      CONT      [64 3]         -> blk.0.attn_out (heads concatenated)
//	attn_out-0     MUL_MAT   [64 3]         -> blk.0.attn_proj (after wo)
//	ffn_inp-0      ADD       [64 3]         -> blk.0.ffn_inp
//	norm-0         RMS_NORM  [64 3]
//	ffn_norm-0     MUL       [64 3]         -> blk.0.ffn_norm
//	ffn_gate-0     MUL_MAT   [172 3]        -> blk.0.ffn_gate
//	ffn_up-0       MUL_MAT   [172 3]        -> blk.0.ffn_up
//	ffn_swiglu-0   SWIGLU    [172 3]        -> blk.0.ffn_act  (ggml_op_name says GLU)
//	ffn_out-0      MUL_MAT   [64 3]         -> blk.0.ffn_out (down projection)
//	l_out-0        ADD       [64 3]         -> blk.0.out
//
// and around the layers "embd" (GET_ROWS [n_embd, n_tokens], -> embd),
// "norm", "result_norm" (MUL, -> output_norm) and "result_output"
// (MUL_MAT [n_vocab, n_tokens], -> logits).
//
// How to tell the three Qcur-N (and two or three Kcur-N, Vcur-N) apart: the
// callback passes the same name for each, so pass the node's op as well.
// The MUL_MAT holds the projection in a flat [n_head*head_dim, n_tokens]
// layout, the RESHAPE the same values with the heads split out, and the
// ROPE (the last Qcur-N, Kcur-N of the layer) the rotated ones.
// FromLlamaCpp maps the RESHAPE (whose ne gives n_head and head_dim
// without the hyper-parameters) and the ROPE, and skips the MUL_MAT so that
// each probe is produced once. (A consumer without the op could go by order
// instead: the first Qcur-N is the projection, the last the roped one.)
//
// Why ffn_out-N is only the down projection: the residual add after it is
// also named "ffn_out-N" first, but is renamed "l_out-N" a moment later
// (no control vector means the same tensor), so the callback sees only the
// MUL_MAT under that name. With a control vector the ADD keeps the name
// "ffn_out-N"; FromLlamaCpp skips ADD nodes of that name.
//
// What a harness must set to get comparable dumps:
//   - flash attention off (llama_context_params.flash_attn_type = 0; the
//     default "auto" turns it on for the CPU): with it, kq-N, kq_soft_max-N
//     and kqv-N do not exist (one unnamed FLASH_ATTN_EXT node instead) and
//     kqv_out-N is a RESHAPE of its result;
//   - logits for every token of the batch: when only the last token has
//     logits, llama.cpp drops the other rows (two unnamed GET_ROWS nodes)
//     before ffn_inp of the LAST layer, so from there on, and in
//     result_norm and result_output, there is one row per output token;
//   - an F32 KV cache (type_k = type_v = GGML_TYPE_F32) for a tight
//     comparison: the default F16 cache rounds K and V, which moves
//     attn_scores, attn_probs and attn_out by about 1e-3 relative;
//   - the batch's positions, to pass to SplitLlamaCpp (rows are tokens of
//     the ubatch, not positions);
//   - kq-N holds the raw q·k: llama.cpp applies the 1/sqrt(head_dim) scale
//     and the causal mask inside the softmax, so pass the scale as
//     SplitOptions.KQScale. Its n_kv is the padded cache size (256 here):
//     SplitLlamaCpp keeps the first pos+1 keys, which in a fresh context
//     holding one sequence are positions 0..pos.

// FromLlamaCpp maps the name of a llama.cpp graph node, and its op as
// ggml_op_desc or ggml_op_name spells it ("MUL_MAT", "RESHAPE", "ROPE",
// ...), to our probe name. ok is false for nodes that are not probes,
// including the duplicates described above. The op matters only for
// Qcur-N, Kcur-N, Vcur-N and ffn_out-N.
func FromLlamaCpp(node, op string) (probe string, ok bool) {
	switch node {
	case "embd", "inp_embd": // inp_embd in older releases
		return Embd, true
	case "result_norm":
		return OutputNorm, true
	case "result_output":
		return Logits, true
	}
	dash := strings.LastIndexByte(node, '-')
	if dash < 0 {
		return "", false
	}
	layer, err := parsePos(node[dash+1:])
	if err != nil {
		return "", false
	}
	kind := ""
	switch base := node[:dash]; base {
	case "attn_norm":
		kind = KindAttnNorm
	case "Qcur":
		kind = pickByOp(op, KindQ, KindQRope)
	case "Kcur":
		kind = pickByOp(op, KindK, KindKRope)
	case "Vcur":
		kind = pickByOp(op, KindV, "")
	case "kq":
		kind = KindAttnScores
	case "kq_soft_max":
		kind = KindAttnProbs
	case "kqv_out":
		kind = KindAttnOut
	case "attn_out":
		kind = KindAttnProj
	case "ffn_inp":
		kind = KindFFNInp
	case "ffn_norm":
		kind = KindFFNNorm
	case "ffn_gate":
		kind = KindFFNGate
	case "ffn_up":
		kind = KindFFNUp
	case "ffn_swiglu":
		kind = KindFFNAct
	case "ffn_out":
		if op != "ADD" {
			kind = KindFFNOut
		}
	case "l_out":
		kind = KindOut
	}
	if kind == "" {
		return "", false
	}
	return LayerName(layer, kind), true
}

// pickByOp chooses between the heads-split projection (RESHAPE) and the
// roped tensor (ROPE) of one name; "" when the op is neither.
func pickByOp(op, reshaped, roped string) string {
	switch op {
	case "RESHAPE":
		return reshaped
	case "ROPE":
		return roped
	}
	return ""
}

// SplitOptions says how to turn one llama.cpp node into per-position probes.
type SplitOptions struct {
	// Positions[i] is the token position of row i of the node: the batch's
	// positions, or for the last layer, when only some tokens produce
	// logits, the positions of those. nil means 0, 1, 2, ...
	Positions []int
	// KQScale multiplies attn_scores (kq-N holds the raw q·k); 0 means 1.
	// For llama it is 1/sqrt(head_dim).
	KQScale float32
}

// SplitLlamaCpp cuts the data of one llama.cpp node, already mapped to
// probe by FromLlamaCpp, into one tensor per position with the shapes of
// the package documentation, and passes each to emit (a Set's Emit, bound
// to the probe name). ne is ggml's dimensions of the node (ne[0] fastest)
// and data its contiguous float32 values. emit must not keep the slice.
func SplitLlamaCpp(probe string, ne [4]int64, data []float32, opts SplitOptions, emit func(pos int, shape []int, data []float32) error) error {
	// Multiply with a bound so that absurd dimensions cannot wrap around
	// to the right count.
	total := int64(1)
	for _, n := range ne {
		if n < 1 || total > int64(len(data))/n {
			total = -1
			break
		}
		total *= n
	}
	if total != int64(len(data)) || ne[3] != 1 {
		return fmt.Errorf("probe: %s: ne %v does not describe %d values in at most 3 dimensions", probe, ne, len(data))
	}
	_, kind := ParseName(probe)
	var rows, rowLen int
	var shape []int
	switch kind {
	case KindQ, KindQRope, KindK, KindKRope, KindV:
		// [head_dim, n_head, n_tokens]: a row is [n_head, head_dim] row-major.
		rows, rowLen = int(ne[2]), int(ne[0]*ne[1])
		shape = []int{int(ne[1]), int(ne[0])}
	case KindAttnScores, KindAttnProbs:
		return splitAttention(probe, kind, ne, data, opts, emit)
	default:
		if ne[2] != 1 {
			return fmt.Errorf("probe: %s: ne %v: want [n, n_tokens]", probe, ne)
		}
		rows, rowLen = int(ne[1]), int(ne[0])
		shape = []int{int(ne[0])}
	}
	positions, err := rowPositions(probe, opts.Positions, rows)
	if err != nil {
		return err
	}
	for r, pos := range positions {
		if err := emit(pos, shape, data[r*rowLen:(r+1)*rowLen]); err != nil {
			return err
		}
	}
	return nil
}

// splitAttention gathers row r of a [n_kv, n_tokens, n_head] tensor into
// [n_head, pos+1], keeping the keys the position may attend to.
func splitAttention(probe, kind string, ne [4]int64, data []float32, opts SplitOptions, emit func(int, []int, []float32) error) error {
	nKV, rows, nHead := int(ne[0]), int(ne[1]), int(ne[2])
	positions, err := rowPositions(probe, opts.Positions, rows)
	if err != nil {
		return err
	}
	scale := float32(1)
	if kind == KindAttnScores && opts.KQScale != 0 {
		scale = opts.KQScale
	}
	var buf []float32
	for r, pos := range positions {
		keep := pos + 1
		if keep > nKV {
			return fmt.Errorf("probe: %s at position %d: the node holds only %d keys", probe, pos, nKV)
		}
		buf = buf[:0]
		for h := 0; h < nHead; h++ {
			src := data[(h*rows+r)*nKV:][:keep]
			for _, v := range src {
				buf = append(buf, v*scale)
			}
		}
		if err := emit(pos, []int{nHead, keep}, buf); err != nil {
			return err
		}
	}
	return nil
}

func rowPositions(probe string, given []int, rows int) ([]int, error) {
	if given == nil {
		p := make([]int, rows)
		for i := range p {
			p[i] = i
		}
		return p, nil
	}
	if len(given) != rows {
		return nil, fmt.Errorf("probe: %s: %d positions given for %d rows", probe, len(given), rows)
	}
	for _, p := range given {
		if p < 0 {
			return nil, fmt.Errorf("probe: %s: negative position %s", probe, strconv.Itoa(p))
		}
	}
	return given, nil
}
