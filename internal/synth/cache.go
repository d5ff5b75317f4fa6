package synth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"llamago/chat"
	"llamago/quantize"
	"llamago/tensor"
)

// CacheDirEnv names the environment variable that overrides the cache
// folder.
const CacheDirEnv = "LLAMAGO_SYNTH_CACHE"

// DefaultCacheDir is $LLAMAGO_SYNTH_CACHE, or llamago/synth under the
// user's cache folder (os.UserCacheDir). TinyLlama-shaped files are large
// (4.4 GB in F32), so they are kept between test runs.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv(CacheDirEnv); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("synth: no cache folder (set %s): %w", CacheDirEnv, err)
	}
	return filepath.Join(base, "llamago", "synth"), nil
}

// Cached returns the path of the model Write would write for these
// arguments, in dir ("" means DefaultCacheDir), writing it first when it
// is not there. The F32 file is kept too: other types are quantized from
// it. Files are complete or absent (written to a temporary name and
// renamed), so an interrupted run leaves nothing that a later one would
// trust, and two processes writing the same file at once both end with
// the same bytes.
func Cached(dir string, shape Shape, target quantize.Target, seed uint64, opts Options) (string, error) {
	if dir == "" {
		var err error
		if dir, err = DefaultCacheDir(); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("synth: cache folder: %w", err)
	}
	key, err := cacheKey(shape, seed, opts)
	if err != nil {
		return "", err
	}
	name := func(t string) string { return filepath.Join(dir, fmt.Sprintf("synth-%s-%s.gguf", key, t)) }
	f32 := name("f32")
	if !exists(f32) {
		if err := writeF32(f32, shape, seed, opts); err != nil {
			return "", err
		}
	}
	if target.BaseType() == tensor.F32 {
		return f32, nil
	}
	out := name(target.Name())
	if !exists(out) {
		if err := quantizeFile(f32, out, target, opts); err != nil {
			return "", err
		}
	}
	return out, nil
}

// cacheKey names what decides the bytes of the F32 file: the generator's
// version, the shape, the seed, and a digest of the scales, the
// vocabulary file and the chat template.
func cacheKey(shape Shape, seed uint64, opts Options) (string, error) {
	if err := shape.check(); err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "scales %s\ntemplate %q\nvocab ", opts.scales(), chat.TinyLlamaTemplate)
	vf, err := os.Open(opts.VocabPath)
	if err != nil {
		return "", fmt.Errorf("synth: vocabulary: %w", err)
	}
	defer vf.Close()
	if _, err := io.Copy(h, vf); err != nil {
		return "", fmt.Errorf("synth: vocabulary: %w", err)
	}
	digest := hex.EncodeToString(h.Sum(nil))[:12]
	return fmt.Sprintf("v%d-%s-seed%d-%s", GeneratorVersion, shape, seed, digest), nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil || !errors.Is(err, os.ErrNotExist)
}
