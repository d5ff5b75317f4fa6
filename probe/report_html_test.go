package probe

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
)

func TestWriteHTML(t *testing.T) {
	run := baseRun()
	run.info.Prompt = `<script>alert("x")</script>`
	run.edit = func(name string, pos int, data []float32) bool {
		switch {
		case name == "blk.1.q" && pos == 2:
			data[0] *= 2
		case name == "logits" && pos == 1:
			data[0] = float32(math.NaN())
		}
		return true
	}
	r := mustDiff(t, run.dumpFile(t), baseRun().dumpFile(t), DiffOptions{})
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{"<!DOCTYPE html>", "<style>", "<svg", "</svg>", "<polyline",
		`class="first"`, `id="first"`, "first divergence: blk.1.q at position 2", "agree 0.001", "warn 0.01"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Self-contained: nothing to fetch, no script.
	for _, banned := range []string{"http:", "https:", "<script", "<link", "src=", "@import"} {
		if strings.Contains(page, banned) {
			t.Errorf("page contains %q", banned)
		}
	}
	if n := strings.Count(page, "<tr"); n != len(r.Rows)+1 {
		t.Errorf("%d table rows for %d report rows", n, len(r.Rows))
	}
	if strings.Count(page, "<tr") != strings.Count(page, "</tr>") {
		t.Error("unbalanced <tr>")
	}
	// The chart is well-formed XML.
	start, end := strings.Index(page, "<svg"), strings.Index(page, "</svg>")
	dec := xml.NewDecoder(strings.NewReader(page[start : end+len("</svg>")]))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("chart is not well-formed: %v", err)
		}
	}
}

func TestWriteHTMLAllAgree(t *testing.T) {
	r := mustDiff(t, baseRun().dumpFile(t), baseRun().dumpFile(t), DiffOptions{})
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "all probes agree") || strings.Contains(buf.String(), `id="first"`) {
		t.Error("agreeing page is wrong")
	}
}
