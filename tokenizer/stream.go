package tokenizer

import (
	"unicode/utf8"
)

// StreamDecoder decodes a sequence of tokens one at a time, as generation
// produces them. Each Add returns only complete, valid UTF-8: bytes of a
// character split across byte tokens are held back until the character
// is complete. Bytes that cannot start or continue a character come out
// as U+FFFD, one per byte. Concatenating every Add and the final Flush
// gives DecodeWith of all the ids (with the same options) with each
// invalid byte replaced by U+FFFD. The one exception is RemoveSpecial: a
// stream cannot know which token is the last, so it drops only the
// leading BOS, not a trailing EOS (which renders as nothing unless
// Special is set).
//
// A StreamDecoder is not safe for concurrent use.
type StreamDecoder struct {
	t           *Tokenizer
	opts        DecodeOptions
	first       bool
	removeSpace bool

	// pending is decoded text the space cleanup may still change
	// (byte-level BPE only); partial holds the bytes of an incomplete
	// character.
	pending []byte
	partial []byte
}

// NewStreamDecoder starts decoding a sequence from its first token. To
// continue after a prompt without stripping the first token's leading
// space, pass the prompt's ids to Add first and discard what they return.
func (t *Tokenizer) NewStreamDecoder(opts DecodeOptions) *StreamDecoder {
	return &StreamDecoder{t: t, opts: opts, first: true, removeSpace: t.v.AddSpacePrefix}
}

// Add decodes one more token and returns the text that is now complete.
func (d *StreamDecoder) Add(id int32) string {
	if d.first {
		d.first = false
		if d.opts.RemoveSpecial && d.t.v.AddBOS && id == d.t.v.BOS {
			d.removeSpace = false
			return ""
		}
	}
	p := d.t.piece(id, d.opts.Special, d.removeSpace)
	d.removeSpace = false
	if !d.t.cleanSpaces {
		return d.emit([]byte(p), false)
	}
	d.pending = append(d.pending, p...)
	// The cleanup looks at most three bytes around a space or an
	// apostrophe, so text before four bytes that are neither can no
	// longer change: clean it and emit it.
	cut := stableCut(d.pending)
	if cut == 0 {
		return ""
	}
	done := cleanSpaces(append([]byte(nil), d.pending[:cut]...))
	d.pending = append(d.pending[:0], d.pending[cut:]...)
	return d.emit(done, false)
}

// Flush returns whatever is still held back, an incomplete character as
// U+FFFD, and resets the decoder for a new sequence.
func (d *StreamDecoder) Flush() string {
	var done []byte
	if len(d.pending) > 0 {
		done = cleanSpaces(d.pending)
	}
	s := d.emit(done, true)
	*d = StreamDecoder{t: d.t, opts: d.opts, first: true, removeSpace: d.t.v.AddSpacePrefix}
	return s
}

// stableCut returns the length of the prefix of b that no later text can
// change under cleanSpaces: it ends right before a run of four bytes that
// are neither spaces nor apostrophes, the first of which it keeps with
// the suffix (0 when there is no such run).
func stableCut(b []byte) int {
	run := 0
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ' ' || b[i] == '\'' {
			run = 0
			continue
		}
		run++
		if run == 4 {
			// b[i:i+4] is the quiet run; cut in its middle so that two
			// quiet bytes stay on each side.
			return i + 2
		}
	}
	return 0
}

// emit appends b to the held partial bytes and returns the complete
// characters, invalid bytes as U+FFFD; at the end it also flushes an
// incomplete tail as U+FFFD.
func (d *StreamDecoder) emit(b []byte, final bool) string {
	buf := append(d.partial, b...)
	out := make([]byte, 0, len(buf)+3)
	i := 0
	for i < len(buf) {
		if !final && !utf8.FullRune(buf[i:]) {
			break
		}
		r, n := utf8.DecodeRune(buf[i:])
		if r == utf8.RuneError && n <= 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
			i++
			continue
		}
		out = append(out, buf[i:i+n]...)
		i += n
	}
	d.partial = append(d.partial[:0:0], buf[i:]...)
	return string(out)
}
