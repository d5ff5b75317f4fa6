package convert

import (
	"bytes"
	"testing"
)

// The fuzz targets feed arbitrary bytes to each parser of untrusted input:
// they must return an error or a result, never panic or allocate wildly.

func FuzzLlama2CHeader(f *testing.F) {
	f.Add(header(64, 172, 5, 8, 4, 512, 512))
	f.Add(header(64, 172, 5, 8, 4, -512, 512))
	f.Add(append(header(0x616b3432, 1, 64, 172, 5, 8, 4, 512, 512), make([]byte, 256)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseLlama2CHeader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		// Accepted: the arrays must tile the file exactly.
		end := cfg.headerSize
		for _, a := range cfg.arrays() {
			if a.offset != end {
				t.Fatalf("array %s at %d, want %d", a.name, a.offset, end)
			}
			end += int64(a.bytes())
		}
		if end != int64(len(data)) {
			t.Fatalf("arrays end at %d of %d bytes", end, len(data))
		}
	})
}

func FuzzLlama2CTokenizer(f *testing.F) {
	f.Add([]byte{7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 'a'}, 1)
	f.Add([]byte{7, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255}, 1)
	f.Fuzz(func(t *testing.T, data []byte, nVocab int) {
		if nVocab < 0 || nVocab > maxVocab {
			return // the checkpoint header bounds it
		}
		v, err := parseLlama2CTokenizer(data, nVocab)
		if err == nil && len(v.tokens) != nVocab {
			t.Fatalf("%d tokens, want %d", len(v.tokens), nVocab)
		}
	})
}

func FuzzSafetensorsHeader(f *testing.F) {
	f.Add([]byte("\x40\x00\x00\x00\x00\x00\x00\x00" + `{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}   ` + "\x00\x00\x00\x00"))
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x00{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		list, err := parseSafetensorsHeader(bytes.NewReader(data), int64(len(data)), "fuzz")
		if err != nil {
			return
		}
		for _, st := range list {
			if st.offset < 8 || st.size < 0 || st.offset+st.size > int64(len(data)) {
				t.Fatalf("tensor %s: bytes %d+%d outside the %d-byte file", st.name, st.offset, st.size, len(data))
			}
		}
	})
}

func FuzzSentencePieceModel(f *testing.F) {
	f.Add(encodeSentencePieceModel([]string{"<unk>", "▁a"}, []float32{0, -1}, []int32{tokenUnknown, tokenNormal}))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = parseSentencePieceModel(data)
	})
}
