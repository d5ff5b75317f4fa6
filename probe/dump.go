package probe

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// FormatVersion is the version of the dump layout this package writes in
// the llamago.format_version metadata entry.
const FormatVersion = "1"

// Metadata keys of a dump (safetensors' "__metadata__" holds strings only,
// so lists are JSON text).
const (
	MetaFormatVersion = "llamago.format_version"
	MetaOrder         = "llamago.order"     // JSON array of tensor keys, in emission order
	MetaTokenIDs      = "llamago.token_ids" // JSON array of integers
	MetaPrompt        = "llamago.prompt"
	MetaModelSHA256   = "llamago.model_sha256"
	MetaModelPath     = "llamago.model_path"
	MetaBackend       = "llamago.backend"
	MetaCreated       = "llamago.created" // RFC 3339
)

// DumpInfo describes the run a dump comes from. Diff refuses to compare
// dumps of different token ids or model digests unless forced.
type DumpInfo struct {
	Prompt      string
	TokenIDs    []int32
	ModelPath   string
	ModelSHA256 string // hex
	Backend     string // "cpu", "oracle", "cuda", "llama.cpp", ...
	Created     time.Time
}

// Dump is a sink that keeps every tensor it receives and writes them as one
// safetensors file, F32, with keys "{probe}@{pos}" (such as "blk.0.q@7").
// Data offsets follow emission order, which llamago.order also records,
// so a reader sees the forward order without relying on JSON key order.
//
// The format: an unsigned 64-bit little-endian header length N, N bytes of
// a JSON object (padded with spaces so that the data starts at a multiple
// of 8), then the data, each tensor a contiguous little-endian C-order
// block; the offsets in the header are relative to the start of the data
// and tile it exactly.
type Dump struct {
	path    string
	info    DumpInfo
	entries []dumpEntry
	index   map[string]int // key -> entries index
	closed  bool
}

type dumpEntry struct {
	key   string
	shape []int
	data  []float32
}

// NewDump returns a Dump sink. Close writes the file to path (through a
// temporary file and a rename, so a reader never sees half a dump); with
// an empty path Close writes nothing and WriteTo is the way out.
func NewDump(path string, info DumpInfo) *Dump {
	return &Dump{path: path, info: info, index: map[string]int{}}
}

// DumpKey is the tensor key of a probe at a position: "blk.0.q@7".
func DumpKey(probe string, pos int) string { return probe + "@" + strconv.Itoa(pos) }

// Emit copies the tensor into the dump. A key emitted twice is an error:
// two runs over the same position would otherwise silently overwrite.
func (d *Dump) Emit(name string, pos int, shape []int, data []float32) error {
	if d.closed {
		return fmt.Errorf("probe: dump: emit %s at position %d after Close", name, pos)
	}
	key := DumpKey(name, pos)
	if _, dup := d.index[key]; dup {
		return fmt.Errorf("probe: dump: %s at position %d emitted twice", name, pos)
	}
	d.index[key] = len(d.entries)
	d.entries = append(d.entries, dumpEntry{key: key, shape: slices.Clone(shape), data: slices.Clone(data)})
	return nil
}

// Len returns the number of tensors collected.
func (d *Dump) Len() int { return len(d.entries) }

// Close writes the file when the dump has a path.
func (d *Dump) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	if d.path == "" {
		return nil
	}
	return d.WriteFile(d.path)
}

// WriteFile writes the dump to path through a temporary file in the same
// folder and a rename.
func (d *Dump) WriteFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("probe: dump: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	// CreateTemp makes the file private; a dump is meant to be shared.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("probe: dump: %w", err)
	}
	if _, err := d.WriteTo(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("probe: dump: writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("probe: dump: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("probe: dump: %w", err)
	}
	return nil
}

// WriteTo writes the dump in safetensors format.
func (d *Dump) WriteTo(w io.Writer) (int64, error) {
	header, err := d.header()
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriter(w)
	var n int64
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header)))
	k, _ := bw.Write(lenBuf[:])
	n += int64(k)
	k, _ = bw.Write(header)
	n += int64(k)
	var word [4]byte
	for _, e := range d.entries {
		for _, v := range e.data {
			binary.LittleEndian.PutUint32(word[:], math.Float32bits(v))
			k, _ = bw.Write(word[:])
			n += int64(k)
		}
	}
	// bufio.Writer keeps the first write error and returns it from Flush.
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("probe: dump: %w", err)
	}
	return n, nil
}

// DumpFile returns the dump as ReadDump would read it back from a file,
// for comparing runs in memory (in tests, say) without writing files.
func (d *Dump) DumpFile() (*DumpFile, error) {
	var buf bytes.Buffer
	if _, err := d.WriteTo(&buf); err != nil {
		return nil, err
	}
	return ParseDump(buf.Bytes())
}

// header builds the JSON header by hand so that tensors appear in
// emission order (encoding/json would sort map keys), padded with spaces
// to a multiple of 8 bytes as the safetensors writer does.
func (d *Dump) header() ([]byte, error) {
	meta, err := d.metadata()
	if err != nil {
		return nil, err
	}
	b := []byte(`{"__metadata__":{`)
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, meta[k])
	}
	b = append(b, '}')
	var offset uint64
	for _, e := range d.entries {
		end := offset + 4*uint64(len(e.data))
		b = append(b, ',')
		b = appendJSONString(b, e.key)
		b = append(b, `:{"dtype":"F32","shape":[`...)
		for i, dim := range e.shape {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(dim), 10)
		}
		b = append(b, `],"data_offsets":[`...)
		b = strconv.AppendUint(b, offset, 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, end, 10)
		b = append(b, "]}"...)
		offset = end
	}
	b = append(b, '}')
	for len(b)%8 != 0 {
		b = append(b, ' ')
	}
	return b, nil
}

func (d *Dump) metadata() (map[string]string, error) {
	order := make([]string, len(d.entries))
	for i, e := range d.entries {
		order[i] = e.key
	}
	orderJSON, err := json.Marshal(order)
	if err != nil {
		return nil, fmt.Errorf("probe: dump: %w", err)
	}
	ids := d.info.TokenIDs
	if ids == nil {
		ids = []int32{}
	}
	idsJSON, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("probe: dump: %w", err)
	}
	created := d.info.Created
	if created.IsZero() {
		created = time.Now()
	}
	return map[string]string{
		MetaFormatVersion: FormatVersion,
		MetaOrder:         string(orderJSON),
		MetaTokenIDs:      string(idsJSON),
		MetaPrompt:        d.info.Prompt,
		MetaModelSHA256:   d.info.ModelSHA256,
		MetaModelPath:     d.info.ModelPath,
		MetaBackend:       d.info.Backend,
		MetaCreated:       created.UTC().Format(time.RFC3339Nano),
	}, nil
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
