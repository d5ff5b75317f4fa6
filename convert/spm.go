package convert

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// sentencePiece is one piece of a SentencePiece model.
type sentencePiece struct {
	piece string
	score float32
	typ   int32 // SentencePiece's enum, whose values GGUF's token types reuse
}

// maxSPMFile bounds the tokenizer.model read into memory (Llama's is
// 500 KB; Gemma's 256k-token one is 4 MB).
const maxSPMFile = 256 << 20

// parseSentencePieceModel reads the pieces of a serialized SentencePiece
// ModelProto: field 1 holds the pieces (piece = 1, score = 2, type = 3);
// every other field is skipped.
func parseSentencePieceModel(data []byte) ([]sentencePiece, error) {
	var pieces []sentencePiece
	err := walkProto(data, func(field int, wire int, val uint64, msg []byte) error {
		if field != 1 {
			return nil
		}
		if wire != 2 {
			return fmt.Errorf("piece %d: field 1 has wire type %d, want a message", len(pieces), wire)
		}
		p := sentencePiece{typ: tokenNormal} // the proto's default type
		err := walkProto(msg, func(field int, wire int, val uint64, b []byte) error {
			switch {
			case field == 1 && wire == 2:
				p.piece = string(b)
			case field == 2 && wire == 5:
				p.score = math.Float32frombits(uint32(val))
			case field == 3 && wire == 0:
				p.typ = int32(val)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("piece %d: %w", len(pieces), err)
		}
		pieces = append(pieces, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(pieces) == 0 {
		return nil, errors.New("no pieces: not a SentencePiece model")
	}
	return pieces, nil
}

// walkProto calls fn for each field of a protobuf message: val holds
// varint and fixed-width values, b the bytes of length-delimited ones.
func walkProto(data []byte, fn func(field, wire int, val uint64, b []byte) error) error {
	for off := 0; off < len(data); {
		key, n := binary.Uvarint(data[off:])
		if n <= 0 {
			return fmt.Errorf("bad field key at byte %d", off)
		}
		off += n
		field, wire := int(key>>3), int(key&7)
		var val uint64
		var b []byte
		switch wire {
		case 0:
			val, n = binary.Uvarint(data[off:])
			if n <= 0 {
				return fmt.Errorf("bad varint at byte %d", off)
			}
			off += n
		case 1:
			if len(data)-off < 8 {
				return fmt.Errorf("truncated 64-bit field at byte %d", off)
			}
			val = binary.LittleEndian.Uint64(data[off:])
			off += 8
		case 2:
			size, n := binary.Uvarint(data[off:])
			if n <= 0 || size > uint64(len(data)-off-n) {
				return fmt.Errorf("bad length at byte %d", off)
			}
			off += n
			b = data[off : off+int(size)]
			off += int(size)
		case 5:
			if len(data)-off < 4 {
				return fmt.Errorf("truncated 32-bit field at byte %d", off)
			}
			val = uint64(binary.LittleEndian.Uint32(data[off:]))
			off += 4
		default:
			return fmt.Errorf("unsupported wire type %d at byte %d", wire, off)
		}
		if err := fn(field, wire, val, b); err != nil {
			return err
		}
	}
	return nil
}

// sentencePieceVocab builds the vocabulary from tokenizer.model as
// convert_hf_to_gguf.py's _create_vocab_sentencepiece does: vocabSize
// slots (config.json's vocab_size) that start as "[PADn]" unused tokens
// scored -10000, filled by the model's pieces (user-defined pieces count
// as normal), then by added_tokens.json (user-defined, -1000) and by
// tokenizer_config.json's added_tokens_decoder (control when special, else
// user-defined with "▁" turned back into spaces; -1000).
func sentencePieceVocab(dir string, vocabSize int, tcfg jsonObject) (vocab, error) {
	var v vocab
	path := filepath.Join(dir, "tokenizer.model")
	st, err := os.Stat(path)
	if err != nil {
		return v, err
	}
	if st.Size() > maxSPMFile {
		return v, fmt.Errorf("%s is %d bytes, more than a SentencePiece model can be (%d)", path, st.Size(), maxSPMFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return v, err
	}
	pieces, err := parseSentencePieceModel(data)
	if err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	if vocabSize <= 0 {
		vocabSize = len(pieces)
	}
	v.tokens = make([]string, vocabSize)
	v.scores = make([]float32, vocabSize)
	v.types = make([]int32, vocabSize)
	for i := range v.tokens {
		v.tokens[i] = "[PAD" + strconv.Itoa(i) + "]"
		v.scores[i] = -10000
		v.types[i] = tokenUnused
	}
	for id, p := range pieces {
		if id >= vocabSize {
			break // pieces past config.json's vocab_size are dropped
		}
		typ := int32(tokenNormal)
		switch p.typ {
		case tokenUnknown, tokenControl, tokenUnused, tokenByte:
			typ = p.typ
		}
		v.tokens[id], v.scores[id], v.types[id] = p.piece, p.score, typ
	}

	if data, err := os.ReadFile(filepath.Join(dir, "added_tokens.json")); err == nil {
		var added map[string]int
		if err := json.Unmarshal(data, &added); err != nil {
			return v, fmt.Errorf("added_tokens.json: %w", err)
		}
		for text, id := range added {
			if id < 0 || id >= vocabSize {
				continue
			}
			v.tokens[id], v.scores[id], v.types[id] = text, -1000, tokenUserDefined
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return v, err
	}

	decoder, _ := tcfg["added_tokens_decoder"].(jsonObject)
	for key, raw := range decoder {
		id, err := strconv.Atoi(key)
		if err != nil || id < 0 {
			return v, fmt.Errorf("tokenizer_config.json: added_tokens_decoder key %q is not a token id", key)
		}
		entry, _ := raw.(jsonObject)
		text, ok := entry["content"].(string)
		if !ok {
			return v, fmt.Errorf("tokenizer_config.json: added token %d has no content", id)
		}
		if id >= vocabSize {
			continue
		}
		if truthy(entry["special"]) || looksSpecial(text) {
			v.types[id] = tokenControl
		} else {
			text = strings.ReplaceAll(text, "▁", " ")
			v.types[id] = tokenUserDefined
		}
		v.tokens[id], v.scores[id] = text, -1000
	}
	return v, nil
}

// looksSpecial is convert_hf_to_gguf.py's does_token_look_special: tokens
// some models fail to mark special although they are control tokens.
func looksSpecial(text string) bool {
	switch text {
	case "<pad>", "<mask>", "<2mass>", "[@BOS@]":
		return true
	}
	return strings.HasPrefix(text, "<|") && strings.HasSuffix(text, "|>") ||
		strings.HasPrefix(text, "<｜") && strings.HasSuffix(text, "｜>") ||
		strings.HasPrefix(text, "<unused") && strings.HasSuffix(text, ">")
}
