package hugecache

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestNeedsReread(t *testing.T) {
	for _, c := range []struct {
		pmd, size int64
		want      bool
	}{
		{0, HugePage - 1, false},           // no whole huge page
		{0, 3*HugePage + 5, true},          // none of three mapped huge
		{2 * HugePage, 3 * HugePage, true}, // two of three: under 90%
		{3 * HugePage, 3*HugePage + 5, false},
		{9 * HugePage, 10 * HugePage, false}, // 90%
	} {
		if got := needsReread(c.pmd, c.size); got != c.want {
			t.Errorf("needsReread(%d, %d) = %v, want %v", c.pmd, c.size, got, c.want)
		}
	}
}

// TestRecacheKeepsContents recaches a file written in 4 KiB writes (which
// leaves it cached in small pages) and checks that its contents are
// unchanged and the report is consistent; what the kernel made of it is
// logged, since that depends on the kernel and its settings.
func TestRecacheKeepsContents(t *testing.T) {
	const size = 3*HugePage + 12345
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	path := filepath.Join(t.TempDir(), "weights")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < size; off += 4096 {
		if _, err := f.Write(data[off:min(off+4096, size)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Recache(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %+v", runtime.GOOS, r)
	if r.Size != size || r.Before < 0 || r.After < 0 || r.Before > size || r.After > size {
		t.Errorf("report %+v for a file of %d bytes", r, size)
	}
	if !r.Reread && r.After != r.Before {
		t.Errorf("not read again, but After %d != Before %d", r.After, r.Before)
	}
	if r.Unsupported && (r.Reread || r.Before != 0) {
		t.Errorf("unsupported, yet %+v", r)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the file's contents changed")
	}
	// A second call finds the file as the first left it.
	r2, err := Recache(path)
	if err != nil {
		t.Fatal(err)
	}
	if r.Reread && !r.Unsupported && r.After >= HugePage && r2.Before < r.After {
		t.Errorf("second call found %d bytes mapped huge, the first left %d", r2.Before, r.After)
	}
}

func TestRecacheSmallAndMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "small")
	if err := os.WriteFile(path, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, err := Recache(path); err != nil || r.Reread || r.Size != 4096 {
		t.Errorf("small file: %+v, %v", r, err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := Recache(missing); err == nil || !bytes.Contains([]byte(err.Error()), []byte("missing")) {
		t.Errorf("missing file: error %v, want one naming it", err)
	}
}
