package tokenizer

import (
	"fmt"

	"llamago/gguf"
)

// GGUF metadata keys of the tokenizer.
const (
	keyModel          = "tokenizer.ggml.model"
	keyPre            = "tokenizer.ggml.pre"
	keyTokens         = "tokenizer.ggml.tokens"
	keyScores         = "tokenizer.ggml.scores"
	keyTokenType      = "tokenizer.ggml.token_type"
	keyMerges         = "tokenizer.ggml.merges"
	keyBOS            = "tokenizer.ggml.bos_token_id"
	keyEOS            = "tokenizer.ggml.eos_token_id"
	keyEOT            = "tokenizer.ggml.eot_token_id"
	keyEOM            = "tokenizer.ggml.eom_token_id"
	keyUNK            = "tokenizer.ggml.unknown_token_id"
	keyPAD            = "tokenizer.ggml.padding_token_id"
	keyAddBOS         = "tokenizer.ggml.add_bos_token"
	keyAddEOS         = "tokenizer.ggml.add_eos_token"
	keyAddSpacePrefix = "tokenizer.ggml.add_space_prefix"
)

// metadata is the part of *gguf.File the tokenizer reads.
type metadata interface {
	Has(key string) bool
	String(key string) (string, error)
	Strings(key string) ([]string, error)
	Float32s(key string) ([]float32, error)
	Int32s(key string) ([]int32, error)
	Uint32(key string) (uint32, error)
	Bool(key string) (bool, error)
}

// FromGGUF builds the tokenizer a GGUF file describes, with the defaults
// llama.cpp applies for what the file leaves out.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	v, err := vocabFromMetadata(f)
	if err != nil {
		return nil, err
	}
	return New(v)
}

// VocabFromGGUF reads the vocabulary of a GGUF file without building a
// tokenizer.
func VocabFromGGUF(f *gguf.File) (Vocab, error) { return vocabFromMetadata(f) }

func vocabFromMetadata(md metadata) (Vocab, error) {
	wrap := func(err error) error { return fmt.Errorf("tokenizer: reading GGUF metadata: %w", err) }
	model, err := md.String(keyModel)
	if err != nil {
		return Vocab{}, wrap(err)
	}
	if model != ModelLlama && model != ModelGPT2 {
		return Vocab{}, fmt.Errorf("tokenizer: tokenizer model %q is not supported (want %q or %q)", model, ModelLlama, ModelGPT2)
	}
	pre := ""
	if md.Has(keyPre) {
		if pre, err = md.String(keyPre); err != nil {
			return Vocab{}, wrap(err)
		}
	}
	v := Defaults(model, pre)
	if model == ModelGPT2 && noBOSPre[pre] {
		v.BOS = NoToken
	}
	if v.Tokens, err = md.Strings(keyTokens); err != nil {
		return Vocab{}, wrap(err)
	}
	n := len(v.Tokens)
	if md.Has(keyScores) {
		if v.Scores, err = md.Float32s(keyScores); err != nil {
			// llama.cpp also accepts integer scores.
			ints, ierr := md.Int32s(keyScores)
			if ierr != nil {
				return Vocab{}, wrap(err)
			}
			v.Scores = make([]float32, len(ints))
			for i, x := range ints {
				v.Scores[i] = float32(x)
			}
		}
		if len(v.Scores) < n {
			return Vocab{}, fmt.Errorf("tokenizer: %s has %d entries for %d tokens", keyScores, len(v.Scores), n)
		}
		v.Scores = v.Scores[:n:n]
	}
	if md.Has(keyTokenType) {
		types, err := md.Int32s(keyTokenType)
		if err != nil {
			return Vocab{}, wrap(err)
		}
		if len(types) < n {
			return Vocab{}, fmt.Errorf("tokenizer: %s has %d entries for %d tokens", keyTokenType, len(types), n)
		}
		v.Types = make([]TokenType, n)
		for i := range v.Types {
			v.Types[i] = TokenType(types[i])
		}
	}
	if model == ModelGPT2 {
		if v.Merges, err = md.Strings(keyMerges); err != nil {
			return Vocab{}, wrap(err)
		}
	}
	if md.Has(keyAddSpacePrefix) {
		if v.AddSpacePrefix, err = md.Bool(keyAddSpacePrefix); err != nil {
			return Vocab{}, wrap(err)
		}
	}
	// A default id outside the vocabulary is dropped; an id from the file
	// outside it is ignored (the default stays), as llama.cpp does.
	for _, s := range []struct {
		key string
		id  *int32
	}{{keyBOS, &v.BOS}, {keyEOS, &v.EOS}, {keyEOT, &v.EOT}, {keyEOM, &v.EOM}, {keyUNK, &v.UNK}, {keyPAD, &v.PAD}} {
		if *s.id >= int32(n) {
			*s.id = NoToken
		}
		if !md.Has(s.key) {
			continue
		}
		id, err := md.Uint32(s.key)
		if err != nil {
			return Vocab{}, wrap(err)
		}
		if id < uint32(n) {
			*s.id = int32(id)
		}
	}
	for _, s := range []struct {
		key string
		b   *bool
	}{{keyAddBOS, &v.AddBOS}, {keyAddEOS, &v.AddEOS}} {
		if !md.Has(s.key) {
			continue
		}
		if *s.b, err = md.Bool(s.key); err != nil {
			return Vocab{}, wrap(err)
		}
	}
	return v, nil
}

// SetGGUF writes the vocabulary to a GGUF writer's metadata the way
// llama.cpp's converters do: model, pre-tokenizer, tokens, scores and
// types when present, merges for byte-level BPE, the special ids that are
// set and the add_bos/add_eos flags; add_space_prefix only when it differs
// from llama.cpp's default for the model.
func (v Vocab) SetGGUF(w *gguf.Writer) {
	w.Set(keyModel, gguf.String(v.Model))
	if v.Pre != "" {
		w.Set(keyPre, gguf.String(v.Pre))
	}
	w.Set(keyTokens, gguf.Strings(v.Tokens))
	if v.Scores != nil {
		w.Set(keyScores, gguf.Float32s(v.Scores))
	}
	if v.Types != nil {
		types := make([]int32, len(v.Types))
		for i, t := range v.Types {
			types[i] = int32(t)
		}
		w.Set(keyTokenType, gguf.Int32s(types))
	}
	if v.Model == ModelGPT2 {
		w.Set(keyMerges, gguf.Strings(v.Merges))
	}
	for _, s := range []struct {
		key string
		id  int32
	}{{keyBOS, v.BOS}, {keyEOS, v.EOS}, {keyEOT, v.EOT}, {keyEOM, v.EOM}, {keyUNK, v.UNK}, {keyPAD, v.PAD}} {
		if s.id != NoToken {
			w.Set(s.key, gguf.Uint32(uint32(s.id)))
		}
	}
	w.Set(keyAddBOS, gguf.Bool(v.AddBOS))
	w.Set(keyAddEOS, gguf.Bool(v.AddEOS))
	if v.AddSpacePrefix != (v.Model == ModelLlama) {
		w.Set(keyAddSpacePrefix, gguf.Bool(v.AddSpacePrefix))
	}
}
