package tokenizer

import (
	"fmt"
	"math"
	"strings"
)

// spmSymbol is a piece of the text being merged: bytes [start, start+n)
// of the session text, linked to its neighbours. n is 0 once merged away.
type spmSymbol struct {
	start, n   int
	prev, next int
}

// spmSession holds the buffers of one Encode call.
type spmSession struct {
	t       *Tokenizer
	symbols []spmSymbol
	queue   bigramQueue
	text    string
}

// encode tokenizes one text fragment, SentencePiece style
// (llm_tokenizer_spm_session): optional leading space, spaces to ▁, then
// split into UTF-8 characters and repeatedly merge the adjacent pair whose
// concatenation is the best-scoring token (leftmost first on ties). Pieces
// that are not tokens fall back to byte tokens.
func (s *spmSession) encode(fragment string, spacePrefix bool, out []int32) ([]int32, error) {
	if spacePrefix {
		fragment = " " + fragment
	}
	s.text = strings.ReplaceAll(fragment, " ", "▁")
	text := s.text
	if text == "" {
		return out, nil
	}
	if cap(s.symbols) < len(text) {
		s.symbols = make([]spmSymbol, 0, len(text))
		s.queue = make(bigramQueue, 0, 2*len(text))
	}
	s.symbols = s.symbols[:0]
	for off := 0; off < len(text); {
		n := min(utf8SeqLen(text[off]), len(text)-off)
		next := len(s.symbols) + 1
		if off+n == len(text) {
			next = -1
		}
		s.symbols = append(s.symbols, spmSymbol{start: off, n: n, prev: len(s.symbols) - 1, next: next})
		off += n
	}
	s.queue = s.queue[:0]
	for i := 1; i < len(s.symbols); i++ {
		s.tryAdd(i-1, i)
	}
	for len(s.queue) > 0 {
		b := s.queue.pop()
		left, right := &s.symbols[b.left], &s.symbols[b.right]
		if left.n == 0 || right.n == 0 || left.n+right.n != int(b.size) {
			continue // one side changed since the candidate was queued
		}
		left.n += right.n
		right.n = 0
		left.next = right.next
		if right.next >= 0 {
			s.symbols[right.next].prev = b.left
		}
		s.tryAdd(left.prev, b.left)
		s.tryAdd(b.left, left.next)
	}

	prevUnknown := false
	for i := 0; i != -1; i = s.symbols[i].next {
		sym := s.symbols[i]
		piece := text[sym.start : sym.start+sym.n]
		if id, ok := s.t.tokenID[piece]; ok {
			out = append(out, id)
			prevUnknown = false
			continue
		}
		if s.t.hasByteTokens(piece) {
			for j := 0; j < len(piece); j++ {
				out = append(out, s.t.byteTokens[piece[j]])
			}
			prevUnknown = false
			continue
		}
		// llama.cpp throws here (std::out_of_range from byte_to_token) and
		// the process aborts; the unknown token is what SentencePiece and
		// Hugging Face give, one per character or, with fuse_unk, one per
		// run of them.
		if s.t.v.UNK == NoToken {
			return nil, fmt.Errorf("tokenizer: cannot encode %q: the vocabulary has neither byte tokens for it nor an unknown token", piece)
		}
		if !(s.t.hf != nil && s.t.hf.fuseUnknown && prevUnknown) {
			out = append(out, s.t.v.UNK)
		}
		prevUnknown = true
	}
	return out, nil
}

// hasByteTokens reports whether every byte of piece has a byte token.
func (t *Tokenizer) hasByteTokens(piece string) bool {
	for j := 0; j < len(piece); j++ {
		if t.byteTokens[piece[j]] == NoToken {
			return false
		}
	}
	return true
}

// tryAdd queues the merge of symbols left and right if their concatenation
// is a token (or, merging by rank, a Hugging Face merge).
func (s *spmSession) tryAdd(left, right int) {
	if left < 0 || right < 0 {
		return
	}
	l, r := s.symbols[left], s.symbols[right]
	merged := s.text[l.start : l.start+l.n+r.n]
	id, ok := s.t.tokenID[merged]
	if !ok {
		return
	}
	// Best score first (leftmost on ties), or lowest rank first.
	prio := ^sortableFloat(s.t.scores[id])
	if s.t.hf != nil {
		rank, ok := s.t.hf.ranks[tokenPair{merged[:l.n], merged[l.n:]}]
		if !ok {
			return
		}
		prio = uint32(rank)
	}
	s.queue.push(bigram{key: uint64(prio)<<32 | uint64(uint32(left)), left: left, right: right, leftN: int32(l.n), size: int32(len(merged))})
}

// sortableFloat maps a float32 to a uint32 in the same order (-0 and +0
// equal, as they compare in C++).
func sortableFloat(f float32) uint32 {
	if f == 0 {
		f = 0
	}
	b := math.Float32bits(f)
	if b&0x80000000 != 0 {
		return ^b
	}
	return b | 0x80000000
}

// bigram is a candidate merge of two adjacent symbols.
type bigram struct {
	// key orders candidates, smallest first: the merge priority in the
	// high half (rank, or inverted score), the left symbol's index in the
	// low half so that ties go leftmost first, as in llama.cpp.
	key         uint64
	left, right int
	leftN, size int32 // the left side's and the pair's bytes when queued, to detect stale candidates
}

// bigramQueue is a binary min-heap of candidates by key.
type bigramQueue []bigram

func (q *bigramQueue) push(b bigram) {
	h := append(*q, b)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if h[p].key <= h[i].key {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	*q = h
}

func (q *bigramQueue) pop() bigram {
	h := *q
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for i := 0; ; {
		m, l := i, 2*i+1
		if l < n && h[l].key < h[m].key {
			m = l
		}
		if r := l + 1; r < n && h[r].key < h[m].key {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}
