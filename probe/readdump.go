package probe

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"llamago/tensor"
)

// MaxHeaderSize bounds the JSON header of a safetensors file, as the
// reference implementation does (100 MB): a larger length is corruption.
const MaxHeaderSize = 100_000_000

// DumpFile is a safetensors file read back. Tensors keep their stored bytes
// (a dump of a long run is large) and convert to float64 on demand.
type DumpFile struct {
	Path     string
	Info     DumpInfo          // from the llamago.* metadata, zero where absent
	Metadata map[string]string // all of __metadata__
	Keys     []string          // tensor keys in forward (emission) order
	Tensors  map[string]*DumpTensor
}

// DumpTensor is one tensor of a dump.
type DumpTensor struct {
	Key   string
	Probe string // the key before the last '@'
	Pos   int    // the position after it; -1 for a key without "@pos"
	DType string // as stored: F32, F16, BF16 or F64
	Shape []int
	raw   []byte // little-endian elements, len checked against Shape
}

// Len returns the number of elements.
func (t *DumpTensor) Len() int { return len(t.raw) / dtypeSize(t.DType) }

// Values returns the elements converted to float64 (exactly: every stored
// type converts to float64 without rounding).
func (t *DumpTensor) Values() []float64 { return decode(t.DType, t.raw) }

// HasTokenIDs reports whether the dump records its token ids.
func (d *DumpFile) HasTokenIDs() bool {
	_, ok := d.Metadata[MetaTokenIDs]
	return ok
}

// ReadDump reads and validates a safetensors file.
func ReadDump(path string) (*DumpFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("probe: reading dump: %w", err)
	}
	d, err := parseDump(data)
	if err != nil {
		return nil, fmt.Errorf("probe: reading dump %s: %w", path, err)
	}
	d.Path = path
	return d, nil
}

// dtypeSize returns the element size of the dtypes ParseDump converts, and
// 0 for any other.
func dtypeSize(dtype string) int {
	switch dtype {
	case "F32":
		return 4
	case "F16", "BF16":
		return 2
	case "F64":
		return 8
	}
	return 0
}

// maxElements bounds a tensor's element count (2^51 elements is far more
// than any file holds, and 8 bytes each still fit in a uint64).
const maxElements = 1 << 51

type tensorInfo struct {
	Dtype       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

type parsedInfo struct {
	key        string
	dtype      string
	shape      []int
	begin, end uint64
}

// ParseDump parses a whole safetensors file held in memory; the DumpFile
// keeps referring to data. Every count and offset is checked against the
// buffer before use; errors say what is wrong and where, and no input makes
// it panic.
func ParseDump(data []byte) (*DumpFile, error) {
	d, err := parseDump(data)
	if err != nil {
		return nil, fmt.Errorf("probe: parsing dump: %w", err)
	}
	return d, nil
}

func parseDump(data []byte) (*DumpFile, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("truncated: %d bytes, but a safetensors file starts with an 8-byte header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data[:8])
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("header length %d is absurd (limit %d): not a safetensors file, or corrupt", n, MaxHeaderSize)
	}
	if n > uint64(len(data)-8) {
		return nil, fmt.Errorf("truncated: header length %d, but only %d bytes follow", n, len(data)-8)
	}
	header := data[8 : 8+n]
	body := data[8+n:]
	if !utf8.Valid(header) {
		return nil, errors.New("header is not valid UTF-8")
	}
	meta, infos, err := parseHeader(header)
	if err != nil {
		return nil, err
	}
	if err := checkOffsets(infos, uint64(len(body))); err != nil {
		return nil, err
	}
	d := &DumpFile{Metadata: meta, Tensors: make(map[string]*DumpTensor, len(infos))}
	if d.Metadata == nil {
		d.Metadata = map[string]string{}
	}
	for _, in := range infos { // in offset order
		t := &DumpTensor{Key: in.key, DType: in.dtype, Shape: in.shape, raw: body[in.begin:in.end]}
		t.Probe, t.Pos, err = splitKey(in.key)
		if err != nil {
			return nil, err
		}
		d.Tensors[in.key] = t
	}
	if err := d.readInfo(infos); err != nil {
		return nil, err
	}
	return d, nil
}

// parseHeader reads the JSON object token by token, so that a repeated key
// is an error instead of silently replacing the first.
func parseHeader(header []byte) (map[string]string, []parsedInfo, error) {
	dec := json.NewDecoder(bytes.NewReader(header))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, nil, errors.New("header is not a JSON object")
	}
	var meta map[string]string
	var infos []parsedInfo
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("bad JSON in header: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, nil, errors.New("bad JSON in header: key is not a string")
		}
		if seen[key] {
			return nil, nil, fmt.Errorf("header names %q twice", key)
		}
		seen[key] = true
		if key == "__metadata__" {
			if err := dec.Decode(&meta); err != nil {
				return nil, nil, fmt.Errorf("__metadata__ is not an object of strings: %w", err)
			}
			continue
		}
		var ti tensorInfo
		if err := dec.Decode(&ti); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: bad entry: %w", key, err)
		}
		in, err := checkInfo(key, ti)
		if err != nil {
			return nil, nil, err
		}
		infos = append(infos, in)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, nil, fmt.Errorf("bad JSON in header: %w", err)
	}
	// Only the space padding may follow the object.
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("bad JSON in header: data after the object")
	}
	return meta, infos, nil
}

func checkInfo(key string, ti tensorInfo) (parsedInfo, error) {
	in := parsedInfo{key: key}
	if ti.Dtype == nil || ti.Shape == nil || ti.DataOffsets == nil {
		return in, fmt.Errorf("tensor %q: entry needs dtype, shape and data_offsets", key)
	}
	in.dtype = *ti.Dtype
	size := dtypeSize(in.dtype)
	if size == 0 {
		return in, fmt.Errorf("tensor %q: dtype %q is not supported (want F32, F16, BF16 or F64)", key, in.dtype)
	}
	if len(ti.DataOffsets) != 2 {
		return in, fmt.Errorf("tensor %q: data_offsets has %d values, want 2", key, len(ti.DataOffsets))
	}
	in.begin, in.end = ti.DataOffsets[0], ti.DataOffsets[1]
	if in.end < in.begin {
		return in, fmt.Errorf("tensor %q: data_offsets [%d,%d] end before they begin", key, in.begin, in.end)
	}
	count := uint64(1)
	in.shape = make([]int, len(*ti.Shape))
	for i, dim := range *ti.Shape {
		if dim < 0 {
			return in, fmt.Errorf("tensor %q: negative dimension in shape %v", key, *ti.Shape)
		}
		// Bounding the count keeps count*size from wrapping around, which
		// could make a huge shape pass the size check below.
		if dim != 0 && count > maxElements/uint64(dim) {
			return in, fmt.Errorf("tensor %q: shape %v is absurdly large", key, *ti.Shape)
		}
		count *= uint64(dim)
		in.shape[i] = int(dim)
	}
	if want := count * uint64(size); in.end-in.begin != want {
		return in, fmt.Errorf("tensor %q: shape %v of %s needs %d bytes, but data_offsets [%d,%d] hold %d",
			key, *ti.Shape, in.dtype, want, in.begin, in.end, in.end-in.begin)
	}
	return in, nil
}

// checkOffsets sorts the tensors by offset and checks that they tile the
// data exactly, as safetensors requires: no gap, no overlap, nothing past
// the end, nothing left over.
func checkOffsets(infos []parsedInfo, dataLen uint64) error {
	slices.SortStableFunc(infos, func(a, b parsedInfo) int {
		if c := cmpUint(a.begin, b.begin); c != 0 {
			return c
		}
		return cmpUint(a.end, b.end)
	})
	var at uint64
	for i, in := range infos {
		if in.end > dataLen {
			return fmt.Errorf("tensor %q: data_offsets [%d,%d] out of range: the data section has %d bytes (truncated file?)",
				in.key, in.begin, in.end, dataLen)
		}
		switch {
		case in.begin < at:
			return fmt.Errorf("tensor %q: data_offsets [%d,%d] overlap tensor %q, which ends at %d",
				in.key, in.begin, in.end, infos[i-1].key, at)
		case in.begin > at:
			return fmt.Errorf("tensor %q: data_offsets [%d,%d] leave a gap after byte %d", in.key, in.begin, in.end, at)
		}
		at = in.end
	}
	if at != dataLen {
		return fmt.Errorf("%d bytes after the last tensor's data (the offsets must cover the data exactly)", dataLen-at)
	}
	return nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// splitKey splits "blk.0.q@7" into probe and position; a key without '@'
// (a tensor from another tool) has position -1.
func splitKey(key string) (probe string, pos int, err error) {
	at := strings.LastIndexByte(key, '@')
	if at < 0 {
		return key, -1, nil
	}
	p, err := parsePos(key[at+1:])
	if err != nil {
		return "", 0, fmt.Errorf("tensor key %q: position %q: %w", key, key[at+1:], err)
	}
	return key[:at], p, nil
}

// decode converts little-endian elements of a checked dtype to float64.
func decode(dtype string, raw []byte) []float64 {
	size := dtypeSize(dtype)
	out := make([]float64, len(raw)/size)
	for i := range out {
		b := raw[i*size:]
		switch dtype {
		case "F32":
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		case "F16":
			out[i] = float64(tensor.FP16ToFloat32(binary.LittleEndian.Uint16(b)))
		case "BF16":
			// bfloat16 is the high half of a float32.
			out[i] = float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16))
		case "F64":
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
	}
	return out
}

// readInfo fills Info and Keys from the llamago.* metadata, checking each
// entry that is present; a dump from another tool has none, and its keys
// come in offset order.
func (d *DumpFile) readInfo(byOffset []parsedInfo) error {
	m := d.Metadata
	if v, ok := m[MetaFormatVersion]; ok && v != FormatVersion {
		return fmt.Errorf("%s is %q; this reader knows version %s", MetaFormatVersion, v, FormatVersion)
	}
	d.Info = DumpInfo{
		Prompt:      m[MetaPrompt],
		ModelPath:   m[MetaModelPath],
		ModelSHA256: m[MetaModelSHA256],
		Backend:     m[MetaBackend],
	}
	if v, ok := m[MetaTokenIDs]; ok {
		var ids []int64
		if err := json.Unmarshal([]byte(v), &ids); err != nil {
			return fmt.Errorf("%s is not a JSON array of integers: %w", MetaTokenIDs, err)
		}
		d.Info.TokenIDs = make([]int32, len(ids))
		for i, id := range ids {
			if id < math.MinInt32 || id > math.MaxInt32 {
				return fmt.Errorf("%s: token id %d out of range", MetaTokenIDs, id)
			}
			d.Info.TokenIDs[i] = int32(id)
		}
	}
	if v, ok := m[MetaCreated]; ok && v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return fmt.Errorf("%s: %w", MetaCreated, err)
		}
		d.Info.Created = t
	}
	listed := map[string]bool{}
	if v, ok := m[MetaOrder]; ok {
		var order []string
		if err := json.Unmarshal([]byte(v), &order); err != nil {
			return fmt.Errorf("%s is not a JSON array of strings: %w", MetaOrder, err)
		}
		for _, k := range order {
			if d.Tensors[k] == nil {
				return fmt.Errorf("%s names %q, which is not a tensor of the file", MetaOrder, k)
			}
			if listed[k] {
				return fmt.Errorf("%s names %q twice", MetaOrder, k)
			}
			listed[k] = true
			d.Keys = append(d.Keys, k)
		}
	}
	for _, in := range byOffset {
		if !listed[in.key] {
			d.Keys = append(d.Keys, in.key)
		}
	}
	return nil
}

// formatIDs prints token ids for messages, the ends elided when long.
func formatIDs(ids []int32, around int) string {
	const span = 4
	lo, hi := max(around-span, 0), min(around+span+1, len(ids))
	var sb strings.Builder
	if lo > 0 {
		sb.WriteString("… ")
	}
	for i := lo; i < hi; i++ {
		if i > lo {
			sb.WriteByte(' ')
		}
		sb.WriteString(strconv.Itoa(int(ids[i])))
	}
	if hi < len(ids) {
		sb.WriteString(" …")
	}
	return "[" + sb.String() + "]"
}
