package tokenizer

// bpeSymbol is a piece of the word being merged: bytes [start, start+n)
// of the byte-encoded word, linked to its neighbours; n is 0 once merged
// away.
type bpeSymbol struct {
	start, n   int
	prev, next int
}

// bpeSession holds the buffers of one Encode call.
type bpeSession struct {
	t       *Tokenizer
	symbols []bpeSymbol
	queue   bigramQueue
	word    []byte
}

// encode tokenizes one text fragment as byte-level BPE
// (llm_tokenizer_bpe_session): decode to code points (invalid bytes become
// U+FFFD), split into words with the pre-tokenizer, map each word's bytes
// to GPT-2's printable runes, and within each word repeatedly merge the
// adjacent pair of lowest merge rank (leftmost first on ties).
func (s *bpeSession) encode(text string, out []int32) []int32 {
	cpts := decodeLenient(text)
	start := 0
	var raw []byte
	for _, n := range s.t.pre.words(cpts) {
		raw = raw[:0]
		for _, r := range cpts[start : start+n] {
			raw = appendCpt(raw, r)
		}
		start += n
		s.word = s.word[:0]
		for _, b := range raw {
			s.word = appendCpt(s.word, byteToRune[b])
		}
		out = s.encodeWord(out)
	}
	return out
}

func (s *bpeSession) encodeWord(out []int32) []int32 {
	word := string(s.word)
	if word == "" {
		return out
	}
	if s.t.ignoreMerges {
		if id, ok := s.t.tokenID[word]; ok {
			return append(out, id)
		}
	}
	s.symbols = s.symbols[:0]
	for off := 0; off < len(word); {
		n := min(utf8SeqLen(word[off]), len(word)-off)
		next := len(s.symbols) + 1
		if off+n == len(word) {
			next = -1
		}
		s.symbols = append(s.symbols, bpeSymbol{start: off, n: n, prev: len(s.symbols) - 1, next: next})
		off += n
	}
	s.queue = s.queue[:0]
	for i := 1; i < len(s.symbols); i++ {
		s.tryAdd(word, i-1, i)
	}
	for len(s.queue) > 0 {
		b := s.queue.pop()
		left, right := &s.symbols[b.left], &s.symbols[b.right]
		// Symbols only grow to the right from a fixed start, so the pair
		// still spells the queued text exactly when both lengths are the
		// ones queued.
		if left.n != int(b.leftN) || right.n != int(b.size-b.leftN) {
			continue
		}
		left.n += right.n
		right.n = 0
		left.next = right.next
		if right.next >= 0 {
			s.symbols[right.next].prev = b.left
		}
		s.tryAdd(word, left.prev, b.left)
		s.tryAdd(word, b.left, left.next)
	}
	for i := 0; i != -1; i = s.symbols[i].next {
		sym := s.symbols[i]
		piece := word[sym.start : sym.start+sym.n]
		if id, ok := s.t.tokenID[piece]; ok {
			out = append(out, id)
			continue
		}
		// llama.cpp looks up each byte of the encoded piece as a
		// one-byte token and drops those it cannot find; with a complete
		// byte-level vocabulary this never happens.
		for j := 0; j < len(piece); j++ {
			if id, ok := s.t.tokenID[piece[j:j+1]]; ok {
				out = append(out, id)
			}
		}
	}
	return out
}

func (s *bpeSession) tryAdd(word string, left, right int) {
	if left < 0 || right < 0 {
		return
	}
	l, r := s.symbols[left], s.symbols[right]
	rank, ok := s.t.ranks[tokenPair{word[l.start : l.start+l.n], word[r.start : r.start+r.n]}]
	if !ok {
		return
	}
	s.queue.push(bigram{key: uint64(rank)<<32 | uint64(uint32(left)), left: left, right: right, leftN: int32(l.n), size: int32(l.n + r.n)})
}
