package tokenizer_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"llamago/internal/testenv"
	"llamago/tokenizer"
)

// validPerByte replaces each byte that is not part of a valid UTF-8
// character by U+FFFD.
func validPerByte(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// checkStream decodes ids one by one and checks that every chunk is
// valid UTF-8 and that the chunks add up to DecodeWith.
func checkStream(t *testing.T, tok *tokenizer.Tokenizer, ids []int32, opts tokenizer.DecodeOptions) bool {
	t.Helper()
	d := tok.NewStreamDecoder(opts)
	var all strings.Builder
	for _, id := range ids {
		chunk := d.Add(id)
		if !utf8.ValidString(chunk) {
			t.Errorf("ids %v: Add(%d) returned invalid UTF-8 %q", ids, id, chunk)
			return false
		}
		all.WriteString(chunk)
	}
	last := d.Flush()
	if !utf8.ValidString(last) {
		t.Errorf("ids %v: Flush returned invalid UTF-8 %q", ids, last)
		return false
	}
	all.WriteString(last)
	if want := validPerByte(tok.DecodeWith(ids, opts)); all.String() != want {
		t.Errorf("ids %v %+v: stream gave %q, Decode %q", ids, opts, all.String(), want)
		return false
	}
	return true
}

func TestStreamDecoderSplitsNoCharacter(t *testing.T) {
	tok := loadGGUF(t, testenv.LlamaSPMVocab)
	// 🦙 is not in the vocabulary: four byte tokens, and no chunk may hold
	// a part of it.
	ids, err := tok.Encode("a🦙b", tokenizer.EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := tok.NewStreamDecoder(tokenizer.DecodeOptions{})
	var chunks []string
	for _, id := range ids {
		chunks = append(chunks, d.Add(id))
	}
	chunks = append(chunks, d.Flush())
	if len(ids) < 6 {
		t.Fatalf("expected byte fallback for the emoji, got ids %v", ids)
	}
	if got := strings.Join(chunks, ""); got != "a🦙b" {
		t.Fatalf("stream gave %q", got)
	}
	for _, c := range chunks {
		if strings.ContainsRune(c, '🦙') && c != "🦙" && c != "🦙b" {
			t.Errorf("chunk %q mixes the emoji with earlier text", c)
		}
		if !utf8.ValidString(c) {
			t.Errorf("chunk %q is not valid UTF-8", c)
		}
	}
	t.Logf("ids %v -> chunks %q", ids, chunks)
}

func TestStreamDecoderMatchesDecode(t *testing.T) {
	spm := loadGGUF(t, testenv.LlamaSPMVocab)
	bpe, err := tokenizer.New(synthBPEVocab("gpt-2")) // cleans spaces when decoding
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]*tokenizer.Tokenizer{"spm": spm, "bpe": bpe} {
		t.Run(name, func(t *testing.T) {
			failures := 0
			for _, s := range generatedStrings(300) {
				ids, err := tok.Encode(s, tokenizer.EncodeOptions{AddSpecial: true, ParseSpecial: true})
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range []tokenizer.DecodeOptions{{}, {Special: true}, {RemoveSpecial: true}} {
					if !checkStream(t, tok, ids, o) {
						failures++
					}
				}
				if failures > 10 {
					t.Fatal("too many failures")
				}
			}
			// Random id sequences: byte tokens that never complete,
			// control tokens, ids out of range.
			rng := rand.New(rand.NewPCG(3, 4))
			for range 300 {
				ids := make([]int32, 1+rng.IntN(12))
				for i := range ids {
					switch rng.IntN(4) {
					case 0:
						ids[i] = int32(rng.IntN(300)) // bytes and specials
					case 1:
						ids[i] = int32(rng.IntN(tok.NumTokens()+4)) - 2
					default:
						ids[i] = int32(rng.IntN(tok.NumTokens()))
					}
				}
				if !checkStream(t, tok, ids, tokenizer.DecodeOptions{Special: rng.IntN(2) == 0}) {
					if failures++; failures > 10 {
						t.Fatal("too many failures")
					}
				}
			}
		})
	}
}
