package convert

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"llamago/tensor"
)

// stTensor is one tensor of a safetensors file, located but not read.
type stTensor struct {
	name   string
	dtype  string
	shape  []uint64 // as stored: outermost dimension first (PyTorch order)
	path   string
	offset int64 // from the start of the file
	size   int64
}

// maxSafetensorsHeader is the largest JSON header accepted; the
// safetensors format itself caps it at 100 MB.
const maxSafetensorsHeader = 100 << 20

// safetensorsDtypeSizes gives the element size of each safetensors dtype,
// so that any valid file can be indexed; only F32, F16 and BF16 convert.
var safetensorsDtypeSizes = map[string]uint64{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

// readSafetensorsIndex reads the header of a safetensors file: an 8-byte
// little-endian header length, a JSON object naming each tensor's dtype,
// shape and byte range in the data that follows. Every range is checked to
// lie in the file and to match its shape. Tensors come back sorted by name.
func readSafetensorsIndex(path string) ([]stTensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return parseSafetensorsHeader(f, st.Size(), path)
}

func parseSafetensorsHeader(r io.ReaderAt, fileSize int64, path string) ([]stTensor, error) {
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors %s: file is %d bytes, too short for the header length: %w", path, fileSize, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > maxSafetensorsHeader || n > uint64(fileSize-8) {
		return nil, fmt.Errorf("safetensors %s: header length %d does not fit in the %d-byte file (or exceeds %d)", path, n, fileSize, maxSafetensorsHeader)
	}
	header := make([]byte, n)
	if _, err := r.ReadAt(header, 8); err != nil {
		return nil, fmt.Errorf("safetensors %s: reading header: %w", path, err)
	}
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(header, &entries); err != nil {
		return nil, fmt.Errorf("safetensors %s: header is not a JSON object: %w", path, err)
	}
	dataStart := int64(8 + n)
	dataSize := uint64(fileSize - dataStart)
	var list []stTensor
	for name, raw := range entries {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			Dtype       string   `json:"dtype"`
			Shape       []int64  `json:"shape"`
			DataOffsets []uint64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("safetensors %s: tensor %q: %w", path, name, err)
		}
		elemSize, ok := safetensorsDtypeSizes[e.Dtype]
		if !ok {
			return nil, fmt.Errorf("safetensors %s: tensor %q has unknown dtype %q", path, name, e.Dtype)
		}
		if len(e.DataOffsets) != 2 || e.DataOffsets[0] > e.DataOffsets[1] || e.DataOffsets[1] > dataSize {
			return nil, fmt.Errorf("safetensors %s: tensor %q has data_offsets %v outside the %d bytes of data", path, name, e.DataOffsets, dataSize)
		}
		t := stTensor{name: name, dtype: e.Dtype, path: path}
		want := elemSize
		for _, d := range e.Shape {
			if d < 0 {
				return nil, fmt.Errorf("safetensors %s: tensor %q has negative dimension in shape %v", path, name, e.Shape)
			}
			hi, lo := bits.Mul64(want, uint64(d))
			if hi != 0 {
				return nil, fmt.Errorf("safetensors %s: tensor %q: shape %v overflows", path, name, e.Shape)
			}
			want = lo
			t.shape = append(t.shape, uint64(d))
		}
		if got := e.DataOffsets[1] - e.DataOffsets[0]; got != want {
			return nil, fmt.Errorf("safetensors %s: tensor %q of %s %v needs %d bytes, data_offsets give %d", path, name, e.Dtype, e.Shape, want, got)
		}
		t.offset = dataStart + int64(e.DataOffsets[0])
		t.size = int64(want)
		list = append(list, t)
	}
	// Sorted by name, as the safetensors library (and so llama.cpp's
	// converter) lists them.
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	return list, nil
}

// read loads the tensor's bytes and returns them with the tensor type and
// ggml-order shape. Only float types convert.
func (t stTensor) read() (srcTensor, error) {
	var typ tensor.Type
	switch t.dtype {
	case "F32":
		typ = tensor.F32
	case "F16":
		typ = tensor.F16
	case "BF16":
		typ = tensor.BF16
	default:
		return srcTensor{}, fmt.Errorf("tensor %s has dtype %s: only F32, F16 and BF16 convert", t.name, t.dtype)
	}
	f, err := os.Open(t.path)
	if err != nil {
		return srcTensor{}, err
	}
	defer f.Close()
	data := make([]byte, t.size)
	if _, err := f.ReadAt(data, t.offset); err != nil {
		return srcTensor{}, fmt.Errorf("reading tensor %s from %s: %w", t.name, t.path, err)
	}
	shape := make([]uint64, len(t.shape))
	for i, d := range t.shape {
		shape[len(shape)-1-i] = d
	}
	return srcTensor{typ: typ, shape: shape, data: data}, nil
}

// modelTensors indexes the safetensors files of a Hugging Face directory
// as llama.cpp's converter finds them: the files of
// model.safetensors.index.json when it exists (which must list exactly the
// tensors they hold), else every model*.safetensors; files in name order,
// tensors by name within each file.
func modelTensors(dir string) ([]stTensor, error) {
	var files []string
	weightMap := map[string]string{}
	indexPath := filepath.Join(dir, "model.safetensors.index.json")
	if data, err := os.ReadFile(indexPath); err == nil {
		var index struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(data, &index); err != nil {
			return nil, fmt.Errorf("%s: %w", indexPath, err)
		}
		if index.WeightMap == nil {
			return nil, fmt.Errorf("%s has no weight_map", indexPath)
		}
		seen := map[string]bool{}
		for _, file := range index.WeightMap {
			if file != filepath.Base(file) || file == "." || file == ".." {
				return nil, fmt.Errorf("%s names %q, which is not a file of the model directory", indexPath, file)
			}
			if !seen[file] {
				seen[file] = true
				files = append(files, file)
			}
		}
		sort.Strings(files)
		weightMap = index.WeightMap
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	} else {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if name := e.Name(); strings.HasPrefix(name, "model") && strings.HasSuffix(name, ".safetensors") {
				files = append(files, name)
			}
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("%s has no model*.safetensors (PyTorch .bin checkpoints are not supported)", dir)
		}
	}
	var all []stTensor
	where := map[string]string{}
	for _, file := range files {
		list, err := readSafetensorsIndex(filepath.Join(dir, file))
		if err != nil {
			return nil, err
		}
		for _, t := range list {
			if prev, dup := where[t.name]; dup {
				return nil, fmt.Errorf("tensor %s is in both %s and %s", t.name, prev, file)
			}
			where[t.name] = file
		}
		all = append(all, list...)
	}
	if len(weightMap) > 0 {
		for name, file := range weightMap {
			if _, ok := where[name]; !ok {
				return nil, fmt.Errorf("tensor %s, which the index puts in %s, is missing: incomplete download?", name, file)
			}
		}
		for name, file := range where {
			if _, ok := weightMap[name]; !ok {
				return nil, fmt.Errorf("tensor %s of %s is not in the index", name, file)
			}
		}
	}
	return all, nil
}
