package probe

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDumpRoundTrip(t *testing.T) {
	run := baseRun()
	var emitted []string
	want := map[string][]float32{}
	run.edit = func(name string, pos int, data []float32) bool {
		if name == "blk.0.v" && pos == 1 {
			data[0] = float32(math.NaN()) // NaN must survive the trip
			data[1] = float32(math.Inf(-1))
		}
		emitted = append(emitted, DumpKey(name, pos))
		want[DumpKey(name, pos)] = slices.Clone(data)
		return true
	}
	path := filepath.Join(t.TempDir(), "run.safetensors")
	dump := NewDump(path, run.info)
	s := NewSet(Filter{}, dump)
	run.emit(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := ReadDump(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Keys, emitted) {
		t.Errorf("keys in forward order:\n got %v\nwant %v", d.Keys, emitted)
	}
	for key, data := range want {
		tensor := d.Tensors[key]
		if tensor == nil {
			t.Fatalf("tensor %s missing", key)
		}
		values := tensor.Values()
		if tensor.DType != "F32" || len(values) != len(data) || tensor.Len() != len(data) {
			t.Fatalf("%s: dtype %s, %d values", key, tensor.DType, len(values))
		}
		for i, v := range data {
			if math.Float32bits(float32(values[i])) != math.Float32bits(v) {
				t.Fatalf("%s[%d] = %v, want %v", key, i, values[i], v)
			}
		}
		probe, pos, _ := strings.Cut(key, "@")
		if tensor.Probe != probe || DumpKey(tensor.Probe, tensor.Pos) != key || pos == "" {
			t.Errorf("%s: probe %q pos %d", key, tensor.Probe, tensor.Pos)
		}
		if !slices.Equal(tensor.Shape, probeShape(tensor.Probe, tensor.Pos)) {
			t.Errorf("%s: shape %v", key, tensor.Shape)
		}
	}
	in := d.Info
	if in.Prompt != testInfo.Prompt || !slices.Equal(in.TokenIDs, testInfo.TokenIDs) || in.ModelPath != testInfo.ModelPath ||
		in.ModelSHA256 != testInfo.ModelSHA256 || in.Backend != testInfo.Backend || !in.Created.Equal(testInfo.Created) {
		t.Errorf("info read back %+v, want %+v", in, testInfo)
	}
	if d.Metadata[MetaFormatVersion] != FormatVersion {
		t.Errorf("format version %q", d.Metadata[MetaFormatVersion])
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("dump file mode: %v, %v", st.Mode(), err)
	}
	// No temporary file is left beside the dump.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries after writing one dump", len(entries))
	}
}

func TestDumpLayout(t *testing.T) {
	raw := baseRun().bytes(t)
	n := binary.LittleEndian.Uint64(raw)
	if (8+n)%8 != 0 {
		t.Errorf("data starts at %d, not a multiple of 8", 8+n)
	}
	header := raw[8 : 8+n]
	if header[0] != '{' {
		t.Errorf("header starts with %q", header[0])
	}
	trimmed := bytes.TrimRight(header, " ")
	if len(header)-len(trimmed) >= 8 {
		t.Errorf("%d padding spaces", len(header)-len(trimmed))
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(header, &obj); err != nil {
		t.Fatalf("header is not JSON: %v", err)
	}
	var meta map[string]string
	if err := json.Unmarshal(obj["__metadata__"], &meta); err != nil {
		t.Fatalf("__metadata__ is not a map of strings: %v", err)
	}
	for _, k := range []string{MetaFormatVersion, MetaOrder, MetaTokenIDs, MetaPrompt, MetaModelSHA256, MetaModelPath, MetaBackend, MetaCreated} {
		if _, ok := meta[k]; !ok {
			t.Errorf("metadata lacks %s", k)
		}
	}
	if meta[MetaTokenIDs] != "[1,403,407,261,378]" {
		t.Errorf("token ids %q", meta[MetaTokenIDs])
	}
	if meta[MetaCreated] != "2025-11-26T04:00:00Z" {
		t.Errorf("created %q", meta[MetaCreated])
	}
}

func TestDumpInMemory(t *testing.T) {
	d := NewDump("", testInfo)
	if err := d.Emit("blk.0.q", 3, []int{1, 2}, []float32{0.5, -1}); err != nil {
		t.Fatal(err)
	}
	f, err := d.DumpFile()
	if err != nil {
		t.Fatal(err)
	}
	tensor := f.Tensors["blk.0.q@3"]
	if len(f.Keys) != 1 || tensor == nil || !slices.Equal(tensor.Values(), []float64{0.5, -1}) || f.Info.Backend != "test" {
		t.Errorf("in-memory dump read back as %+v", f)
	}
}

func TestDumpRejectsDuplicates(t *testing.T) {
	d := NewDump("", DumpInfo{})
	if err := d.Emit("embd", 0, []int{1}, []float32{1}); err != nil {
		t.Fatal(err)
	}
	if err := d.Emit("embd", 0, []int{1}, []float32{1}); err == nil {
		t.Error("second embd@0 accepted")
	}
}

// TestReadReferenceBytes reads files laid out by hand after the examples in
// the safetensors reference implementation's tests.
func TestReadReferenceBytes(t *testing.T) {
	build := func(header string, data []byte) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
		return append(append(b, header...), data...)
	}
	f32 := func(vs ...float32) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		return b
	}
	// Six F32 values 0..5 in shape [1,2,3], 64-byte header without padding.
	raw := build(`{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`, f32(0, 1, 2, 3, 4, 5))
	if raw[0] != 64 {
		t.Fatalf("header length %d, the reference example has 64", raw[0])
	}
	d, err := ParseDump(raw)
	if err != nil {
		t.Fatal(err)
	}
	tensor := d.Tensors["attn.0"]
	if tensor == nil || !slices.Equal(tensor.Shape, []int{1, 2, 3}) || !slices.Equal(tensor.Values(), []float64{0, 1, 2, 3, 4, 5}) {
		t.Errorf("attn.0 = %+v", tensor)
	}
	if tensor.Probe != "attn.0" || tensor.Pos != -1 {
		t.Errorf("a key without @pos gives probe %q pos %d", tensor.Probe, tensor.Pos)
	}
	// An empty file with metadata, padded with spaces.
	d, err = ParseDump(build(`{"__metadata__":{"framework":"pt"}}     `, nil))
	if err != nil || len(d.Keys) != 0 || d.Metadata["framework"] != "pt" {
		t.Errorf("empty file: %v, %+v", err, d)
	}

	// Other dtypes: F16 1.5 = 0x3E00, BF16 -2 = 0xC000, F64 0.1.
	var data []byte
	data = binary.LittleEndian.AppendUint16(data, 0x3E00)
	data = binary.LittleEndian.AppendUint16(data, 0xC000)
	data = binary.LittleEndian.AppendUint64(data, math.Float64bits(0.1))
	d, err = ParseDump(build(`{"h@0":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},`+
		`"b@0":{"dtype":"BF16","shape":[1],"data_offsets":[2,4]},`+
		`"d@0":{"dtype":"F64","shape":[1],"data_offsets":[4,12]}}`, data))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]float64{"h@0": 1.5, "b@0": -2, "d@0": 0.1} {
		if got := d.Tensors[key].Values()[0]; got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	if !slices.Equal(d.Keys, []string{"h@0", "b@0", "d@0"}) {
		t.Errorf("keys without llamago.order come in offset order: %v", d.Keys)
	}
}

func TestReadDumpCorrupt(t *testing.T) {
	good := baseRun().bytes(t)
	n := binary.LittleEndian.Uint64(good)
	withHeader := func(header string, data []byte) []byte {
		for len(header)%8 != 0 {
			header += " "
		}
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
		return append(append(b, header...), data...)
	}
	eight := make([]byte, 8)
	lenOnly := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	for _, tc := range []struct {
		name string
		raw  []byte
		want string // in the error
	}{
		{"empty", nil, "truncated"},
		{"short", []byte{1, 2, 3}, "truncated"},
		{"header cut", good[:8+n/2], "truncated"},
		{"data cut", good[:len(good)-4], "out of range"},
		{"absurd header length", append(lenOnly(1<<62), '{', '}'), "absurd"},
		{"header length past the end", append(lenOnly(100), "{}"...), "truncated"},
		{"not JSON", withHeader("hello", nil), "not a JSON object"},
		{"JSON array", withHeader("[1,2]", nil), "not a JSON object"},
		{"unterminated", withHeader(`{"a@0":{"dtype":"F32"`, nil), "bad"},
		{"garbage after", withHeader(`{} {}`, nil), "after the object"},
		{"invalid UTF-8", withHeader("{\"\xff\":1}", nil), "UTF-8"},
		{"duplicate key", withHeader(`{"a@0":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a@0":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), "twice"},
		{"metadata not strings", withHeader(`{"__metadata__":{"a":1}}`, nil), "__metadata__"},
		{"missing field", withHeader(`{"a@0":{"dtype":"F32","shape":[1]}}`, nil), "needs dtype"},
		{"dtype I32", withHeader(`{"a@0":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}`, eight[:4]), "dtype \"I32\""},
		{"dtype not a string", withHeader(`{"a@0":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, eight[:4]), "bad entry"},
		{"negative dim", withHeader(`{"a@0":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, eight[:4]), "negative"},
		{"fractional dim", withHeader(`{"a@0":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, eight[:4]), "bad entry"},
		{"huge shape", withHeader(`{"a@0":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}}`, eight[:4]), "absurdly large"},
		{"wrapping shape", withHeader(`{"a@0":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}`, nil), "absurdly large"},
		{"size mismatch", withHeader(`{"a@0":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, eight), "needs 12 bytes"},
		{"three offsets", withHeader(`{"a@0":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, eight[:4]), "2"},
		{"negative offset", withHeader(`{"a@0":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, nil), "bad entry"},
		{"reversed offsets", withHeader(`{"a@0":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, eight[:4]), "end before"},
		{"offsets past the end", withHeader(`{"a@0":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, eight[:4]), "out of range"},
		{"overlap", withHeader(`{"a@0":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b@0":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), "overlap"},
		{"gap", withHeader(`{"a@0":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), "gap"},
		{"trailing bytes", withHeader(`{"a@0":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, eight), "after the last"},
		{"bad position", withHeader(`{"a@x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, eight[:4]), "position"},
		{"future version", withHeader(`{"__metadata__":{"llamago.format_version":"9"}}`, nil), "version"},
		{"bad token ids", withHeader(`{"__metadata__":{"llamago.token_ids":"[1,x]"}}`, nil), "token_ids"},
		{"token id range", withHeader(`{"__metadata__":{"llamago.token_ids":"[1,99999999999]"}}`, nil), "out of range"},
		{"bad order", withHeader(`{"__metadata__":{"llamago.order":"{}"}}`, nil), "order"},
		{"order names a stranger", withHeader(`{"__metadata__":{"llamago.order":"[\"x@0\"]"}}`, nil), "not a tensor"},
		{"order twice", withHeader(`{"__metadata__":{"llamago.order":"[\"a@0\",\"a@0\"]"},"a@0":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, eight[:4]), "twice"},
		{"bad created", withHeader(`{"__metadata__":{"llamago.created":"yesterday"}}`, nil), "created"},
	} {
		d, err := ParseDump(tc.raw)
		if err == nil {
			t.Errorf("%s: ParseDump accepted it: %+v", tc.name, d)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not say %q", tc.name, err, tc.want)
		}
	}
}

func TestReadDumpNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.safetensors")
	if err := os.WriteFile(path, []byte("not a dump"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadDump(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("ReadDump error %v does not name the file", err)
	}
	if _, err := ReadDump(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file read")
	}
}

// pythonCheck parses a safetensors file with nothing but Python's standard
// library, applying the reference implementation's rules (header length,
// '{' first, 8-byte aligned data, offsets tiling the data exactly, sizes
// matching shapes), and prints each tensor's key, shape and values.
const pythonCheck = `
import json, struct, sys, array
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
assert n <= 100_000_000 and 8 + n <= len(raw), "header length"
assert (8 + n) % 8 == 0, "data not aligned"
text = raw[8:8+n].decode("utf-8")
assert text.startswith("{"), "header start"
header = json.loads(text)
meta = header.pop("__metadata__", {})
assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()), "metadata"
data = raw[8+n:]
at = 0
out = {}
for key, info in sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"])):
    b, e = info["data_offsets"]
    assert b == at and e >= b, "offsets of " + key
    count = 1
    for d in info["shape"]:
        count *= d
    assert info["dtype"] == "F32" and e - b == 4 * count, "size of " + key
    values = array.array("f")
    values.frombytes(data[b:e])
    if sys.byteorder != "little":
        values.byteswap()
    out[key] = {"shape": info["shape"], "values": [v if v == v else "nan" for v in values]}
    at = e
assert at == len(data), "data not covered"
json.dump({"meta": meta, "tensors": out}, sys.stdout)
`

// TestDumpReadableByPython checks the format with an independent reader.
func TestDumpReadableByPython(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	path := filepath.Join(t.TempDir(), "run.safetensors")
	run := baseRun()
	dump := NewDump(path, run.info)
	s := NewSet(Filter{}, dump)
	run.emit(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, "-c", pythonCheck, path).CombinedOutput()
	if err != nil {
		t.Fatalf("python3 rejects the dump: %v\n%s", err, out)
	}
	var got struct {
		Meta    map[string]string
		Tensors map[string]struct {
			Shape  []int
			Values []any
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	ours, err := ReadDump(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Tensors) != len(ours.Tensors) || got.Meta[MetaPrompt] != testInfo.Prompt {
		t.Fatalf("python sees %d tensors and prompt %q", len(got.Tensors), got.Meta[MetaPrompt])
	}
	for key, pt := range got.Tensors {
		gt := ours.Tensors[key]
		if gt == nil || !slices.Equal(pt.Shape, gt.Shape) || len(pt.Values) != gt.Len() {
			t.Fatalf("%s differs between python and Go", key)
		}
		values := gt.Values()
		for i, v := range pt.Values {
			if f, ok := v.(float64); !ok || f != values[i] {
				t.Fatalf("%s[%d]: python %v, Go %v", key, i, v, values[i])
			}
		}
	}
}

func FuzzReadDump(f *testing.F) {
	run := synthRun{layers: 1, positions: 1, info: testInfo}
	good := run.bytes(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	header := `{"a@0":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`
	f.Add(append(binary.LittleEndian.AppendUint64(nil, uint64(len(header))), header+"\x00\x3c\x00\x3c"...))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := ParseDump(raw)
		if err != nil {
			return
		}
		// A file that parses is consistent.
		if len(d.Keys) != len(d.Tensors) {
			t.Fatalf("%d keys, %d tensors", len(d.Keys), len(d.Tensors))
		}
		for _, k := range d.Keys {
			tensor := d.Tensors[k]
			if tensor == nil {
				t.Fatalf("key %q without tensor", k)
			}
			if n, ok := shapeSize(tensor.Shape); !ok || n != tensor.Len() || n != len(tensor.Values()) {
				t.Fatalf("tensor %q inconsistent", k)
			}
		}
	})
}
