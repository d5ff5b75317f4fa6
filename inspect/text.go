package inspect

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText writes the report as aligned text.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }

	if r.Path != "" {
		p("file\t%s\n", r.Path)
	}
	p("GGUF version\t%d\n", r.Version)
	p("size\t%d bytes (%s)\n", r.Size, humanBytes(uint64(r.Size)))
	p("alignment\t%d\n", r.Alignment)
	p("data offset\t%d\n", r.DataOffset)
	p("tensors\t%d (%d parameters)\n", r.TensorCount, r.Parameters)
	p("metadata\t%d keys\n", r.KVCount)

	p("\nmetadata:\n")
	for _, m := range r.Metadata {
		p("  %s\t%s\t%s\n", m.Key, m.Type, m.text)
	}

	if len(r.Tensors) > 0 {
		p("\ntensors:\n  name\ttype\tshape\toffset\tbytes\n")
		for _, t := range r.Tensors {
			mark := ""
			if !t.Supported {
				mark = " *"
			}
			p("  %s\t%s%s\t%s\t%d\t%d\n", t.Name, t.Type, mark, shapeText(t.Shape), t.Offset, t.Bytes)
		}
		p("\nbytes by type:\n")
		for _, tt := range r.Types {
			p("  %s\t%d tensors\t%d bytes\t%s\n", tt.Type, tt.Count, tt.Bytes, humanBytes(tt.Bytes))
		}
	}

	if m := r.Model; m != nil {
		p("\nmodel (%s):\n", m.Architecture)
		absent := func(key string, list []string) bool {
			for _, k := range list {
				if k == key {
					return true
				}
			}
			return false
		}
		row := func(name, key string, value any) {
			key = strings.ReplaceAll(key, "{arch}", m.Architecture)
			switch {
			case absent(key, m.Missing):
				p("  %s\tmissing (%s)\n", name, key)
			case absent(key, m.Defaulted):
				p("  %s\t%v\t(default: no %s)\n", name, value, key)
			default:
				p("  %s\t%v\n", name, value)
			}
		}
		row("embedding length", "{arch}.embedding_length", m.EmbeddingLength)
		row("blocks", "{arch}.block_count", m.BlockCount)
		row("attention heads", "{arch}.attention.head_count", m.HeadCount)
		row("key-value heads", "{arch}.attention.head_count_kv", m.HeadCountKV)
		if m.HeadCount > 0 && m.EmbeddingLength%m.HeadCount == 0 {
			p("  head size\t%d\n", m.EmbeddingLength/m.HeadCount)
		}
		row("feed-forward length", "{arch}.feed_forward_length", m.FeedForwardLength)
		row("vocabulary", "tokenizer.ggml.tokens", m.VocabSize)
		row("context length", "{arch}.context_length", m.ContextLength)
		row("RoPE frequency base", "{arch}.rope.freq_base", m.RopeFreqBase)
		row("RMS norm epsilon", "{arch}.attention.layer_norm_rms_epsilon", m.RMSNormEpsilon)
		for _, pr := range m.Problems {
			p("  problem\t%s\n", pr)
		}
	}

	if len(r.Notes) > 0 {
		p("\n")
		for _, n := range r.Notes {
			p("note: %s\n", n)
		}
	}
	return tw.Flush()
}

func shapeText(shape []uint64) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// humanBytes writes n in binary units ("1.1 MiB").
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
