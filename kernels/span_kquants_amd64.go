package kernels

//go:noescape
func spanQ4_KVNNI(w *byte, rowBytes int, pairs int, x *byte, nb int, tab *float32, out *float32)

// spanQ4_KVNNIRows is the avx512vnni set's one-token Q4_K kernel over a
// range of rows (rowSpan): len(out) rows starting at w[0], each with
// dotQ4_KVNNI's bits, two at a time (an odd last row by itself).
func spanQ4_KVNNIRows(w []byte, rowBytes int, xq []byte, n int, out []float32) {
	nb, rows := n/qkK, len(out)
	if nb <= 0 || rows == 0 {
		clear(out)
		return
	}
	if pairs := rows / 2; pairs > 0 {
		w, xq := w[:(2*pairs-1)*rowBytes+nb*q4_KBytes], xq[:nb*q8_KBytes]
		spanQ4_KVNNI(&w[0], rowBytes, pairs, &xq[0], nb, &fp16Table[0], &out[0])
	}
	if rows%2 == 1 {
		out[rows-1] = dotQ4_KVNNIRow(w[(rows-1)*rowBytes:], xq, n)
	}
}
