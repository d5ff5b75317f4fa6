// Command bench-vs-llamacpp times llama.cpp (through its libraries and the
// libllama harness) and llamago side by side on the same synthetic
// TinyLlama-1.1B-shaped GGUF files, alternating the two engines repetition
// by repetition in one process, and prints a markdown table of prompt
// processing and token generation speeds, the ratios llamago ÷ llama.cpp,
// and for decoding the fraction of the memory-bandwidth bound each engine
// reaches.
//
// Usage:
//
//	bench-vs-llamacpp [--types q4_0,q8_0,q4_k_m,f16] [-p 128] [-n 64] [-r 3] [-t 2]
//	                  [--llamacpp-variant default|icelake] [--shape tinyllama|small]
//	                  [--models FILE,...] [--bandwidth GB/s] [--prepare] [--huge-pages=false]
//
// Each repetition runs both engines, one right after the other, and gives
// a ratio of its own; a second table gives the median and range of those
// per-repetition ratios, which on a shared machine say more than the
// ratio of the means. -p 0 (or -n 0) skips a test, so that decoding alone
// can be repeated many times in a minute (-p 0 -n 32 -r 9).
//
// Both engines read the weights (llama.cpp those it does not repack) from
// memory maps of the file, whose page size depends on how the page cache
// holds it: a file just written, as the synthetic ones are, is cached in
// 4 KiB pages, the same file read from disk in 2 MiB ones. Unless
// --huge-pages=false, each file is first brought to the second state
// (package internal/hugecache), so that the comparison does not depend on
// how recently the file was written.
//
// The synthetic files are made by package internal/synth and cached
// (TinyLlama-shaped ones take minutes and 0.6–4.4 GB each the first time).
// One process can load only one llama.cpp CPU build, so compare the
// default and the AVX-512 ("icelake") builds with two runs.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"llamago/bench"
	"llamago/bench/membw"
	"llamago/engine"
	"llamago/internal/hugecache"
	"llamago/internal/synth"
	"llamago/internal/testenv"
	"llamago/kernels"
	"llamago/llamacpp"
	"llamago/quantize"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	types     []string
	models    []string
	prompt    int
	gen       int
	reps      int
	threads   int
	variant   string
	shape     synth.Shape
	bandwidth float64
	seed      uint64
	cacheDir  string
	vocab     string
	hugePages bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench-vs-llamacpp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	types := fs.String("types", "q4_0,q8_0,q4_k_m,f16", "comma-separated quantization `types` of the synthetic files")
	models := fs.String("models", "", "comma-separated GGUF `files` to compare instead of synthetic ones")
	prompt := fs.Int("p", 128, "prompt length of the pp test; 0 skips it")
	gen := fs.Int("n", 64, "generated tokens of the tg test; 0 skips it")
	reps := fs.Int("r", 3, "repetitions of each test per engine")
	threads := fs.Int("t", 2, "threads of both engines")
	variant := fs.String("llamacpp-variant", "default", "llama.cpp CPU build: default (ggml picks) or icelake (AVX-512), or another libggml-cpu-`NAME`.so")
	shapeName := fs.String("shape", "tinyllama", "synthetic model `shape`: tinyllama or small")
	bandwidth := fs.Float64("bandwidth", 0, "memory bandwidth in `GB/s` for the bound columns; 0 measures it (1 GiB, -t threads, best of before and after)")
	seed := fs.Uint64("seed", 1, "seed of the synthetic weights and of the token ids")
	cacheDir := fs.String("cache", "", "folder of cached synthetic files (default: synth's cache folder)")
	vocab := fs.String("vocab", "", "vocabulary GGUF of the synthetic files (default: the shared llama-spm vocabulary)")
	prepare := fs.Bool("prepare", false, "only make the synthetic files (cached), then exit")
	hugePages := fs.Bool("huge-pages", true, "before loading a file, have the page cache hold it in 2 MiB pages, reading it again once if it is cached in 4 KiB ones (as a file just written is)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o := options{
		prompt: *prompt, gen: *gen, reps: *reps, threads: *threads, variant: *variant,
		bandwidth: *bandwidth, seed: *seed, cacheDir: *cacheDir, vocab: *vocab, hugePages: *hugePages,
		types: splitList(*types), models: splitList(*models),
	}
	switch *shapeName {
	case "tinyllama":
		o.shape = synth.TinyLlama()
	case "small":
		o.shape = synth.Small()
	default:
		fmt.Fprintf(stderr, "bench-vs-llamacpp: unknown shape %q (tinyllama, small)\n", *shapeName)
		return 2
	}
	if o.prompt < 0 || o.gen < 0 || o.prompt+o.gen == 0 || o.reps < 1 || o.threads < 1 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "bench-vs-llamacpp: -r and -t must be positive, -p and -n not negative and not both 0, and there are no positional arguments")
		return 2
	}
	if o.vocab == "" {
		o.vocab = filepath.Join(testenv.SharedDir(), testenv.LlamaSPMVocab.Path)
	}
	if *prepare {
		if _, err := modelFiles(o, stderr); err != nil {
			fmt.Fprintf(stderr, "bench-vs-llamacpp: %v\n", err)
			return 1
		}
		return 0
	}
	if err := compare(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "bench-vs-llamacpp: %v\n", err)
		return 1
	}
	return 0
}

func compare(ctx context.Context, o options, stdout, stderr io.Writer) error {
	libOpts := llamacpp.OpenOptions{}
	if o.variant != "default" {
		libOpts.CPUVariant = o.variant
	}
	dir := llamacpp.DefaultLibDir()
	if dir == "" {
		// Run from outside the repository: the one it was built from.
		dir = testenv.LlamaCppLibDir()
	}
	lib, err := llamacpp.OpenWith(dir, libOpts)
	if err != nil {
		return err
	}
	files, err := modelFiles(o, stderr)
	if err != nil {
		return err
	}
	// Bandwidth is measured before and after the engines run, and the
	// better number kept: other processes only ever make it look lower.
	var bw *membw.Buffer
	measured := o.bandwidth <= 0
	if measured {
		if bw, err = membw.NewBuffer(1 << 30); err != nil {
			return err
		}
		if o.bandwidth, err = bestBandwidth(ctx, bw, o.threads, 0); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "measured bandwidth: %.1f GB/s with %d threads\n", o.bandwidth, o.threads)
	}
	loadBefore := loadAverage()
	variants, _ := lib.LoadedCPUVariants()
	refName := "llama.cpp"
	if o.variant != "default" {
		refName += " " + o.variant
	}
	c := bench.Comparison{
		RefName: refName, OursName: "llamago",
		PP: bench.Test{Prompt: o.prompt}, TG: bench.Test{Gen: o.gen},
		BandwidthGBs: o.bandwidth,
	}
	var interrupted error
	for _, path := range files {
		row, err := compareFile(ctx, o, lib, path, c.PP, c.TG, stderr)
		if err != nil {
			if ctx.Err() == nil || len(c.Rows) == 0 {
				return err
			}
			// Interrupted: the files done so far still make a table.
			interrupted = err
			break
		}
		c.Rows = append(c.Rows, row)
	}
	if measured && interrupted == nil {
		if c.BandwidthGBs, err = bestBandwidth(ctx, bw, o.threads, c.BandwidthGBs); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "best measured bandwidth: %.1f GB/s with %d threads\n", c.BandwidthGBs, o.threads)
	}
	fmt.Fprintf(stdout, "llama.cpp CPU library: %s; llamago kernels: %s; %d threads; %d repetitions, alternating; %s; load average %s before, %s after\n\n",
		strings.Join(variants, ","), kernels.Selected().Name(), o.threads, o.reps, time.Now().UTC().Format("2006-01-02 15:04 MST"),
		loadBefore, loadAverage())
	if err := c.WriteMarkdown(stdout); err != nil {
		return err
	}
	if interrupted != nil {
		return fmt.Errorf("stopped after %d of %d files: %w", len(c.Rows), len(files), interrupted)
	}
	return nil
}

// modelFiles returns the files to compare: those given, or the cached
// synthetic ones of each type, made first when missing.
func modelFiles(o options, stderr io.Writer) ([]string, error) {
	if len(o.models) > 0 {
		return o.models, nil
	}
	var files []string
	for _, name := range o.types {
		target, err := quantize.ParseTarget(name)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		path, err := synth.Cached(o.cacheDir, o.shape, target, o.seed, synth.Options{VocabPath: o.vocab})
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(stderr, "%s: %s (%.1fs)\n", name, path, time.Since(start).Seconds())
		files = append(files, path)
	}
	return files, nil
}

// bestBandwidth is the fastest of five passes over buf summing it with
// threads goroutines, or prev if that was faster.
func bestBandwidth(ctx context.Context, buf *membw.Buffer, threads int, prev float64) (float64, error) {
	r, err := membw.Best(ctx, 5, func() (membw.Result, error) { return buf.Sum(threads) })
	if err != nil {
		return 0, err
	}
	return max(prev, r.GBPerSecond()), nil
}

// compareFile loads one file into both engines and measures each test,
// alternating the engines (and which one goes first) every repetition,
// with the same token ids for both.
func compareFile(ctx context.Context, o options, lib *llamacpp.Lib, path string, pp, tg bench.Test, stderr io.Writer) (bench.ComparisonRow, error) {
	info, err := bench.DescribeFile(path)
	if err != nil {
		return bench.ComparisonRow{}, err
	}
	if o.hugePages {
		r, err := hugecache.Recache(path)
		if err != nil {
			return bench.ComparisonRow{}, err
		}
		fmt.Fprintf(stderr, "%s: %.0f of %.0f MiB cached in huge pages before, %.0f after (read again: %v, unsupported: %v)\n",
			info.Type, float64(r.Before)/(1<<20), float64(r.Size)/(1<<20), float64(r.After)/(1<<20), r.Reread, r.Unsupported)
	}
	nCtx := max(pp.Tokens(), tg.Tokens())
	// Decode-only runs (-p 0) keep the contexts of the default command
	// (batches of 128), so that their decode speeds compare with its.
	batch := pp.Prompt
	if batch == 0 {
		batch = 128
	}
	loaded, err := engine.Load(path, engine.LoadOptions{Threads: o.threads})
	if err != nil {
		return bench.ComparisonRow{}, err
	}
	defer loaded.Close()
	ours, err := bench.NewLlamago(loaded, "cpu", batch, nCtx)
	if err != nil {
		return bench.ComparisonRow{}, err
	}
	m, err := lib.LoadModel(path, llamacpp.ModelOptions{})
	if err != nil {
		return bench.ComparisonRow{}, err
	}
	defer m.Close()
	ref, err := bench.NewLlamaCpp(m, "llama.cpp", batch, nCtx, o.threads)
	if err != nil {
		return bench.ComparisonRow{}, err
	}
	defer ref.Close()

	row := bench.ComparisonRow{Type: info.Type, DecodeBytes: info.DecodeBytes}
	for _, t := range []bench.Test{pp, tg} {
		if t.Tokens() == 0 {
			continue // skipped with -p 0 or -n 0
		}
		engines := []bench.Engine{ref, ours}
		for _, e := range engines {
			if err := bench.Warmup(ctx, e, info, t, rand.New(rand.NewPCG(o.seed, 0))); err != nil {
				return row, err
			}
		}
		samples := make([][]float64, 2)
		for rep := range o.reps {
			for k := range engines {
				i := (k + rep) % 2 // who goes first alternates too
				rng := rand.New(rand.NewPCG(o.seed, uint64(rep+1)))
				tps, err := bench.RunOnce(ctx, engines[i], info, t, rng)
				if err != nil {
					return row, err
				}
				samples[i] = append(samples[i], tps)
			}
		}
		pair := bench.NewPair(samples[0], samples[1])
		med, lo, hi, _ := pair.RatioSpread()
		fmt.Fprintf(stderr, "%s %s: llama.cpp %.2f ± %.2f, llamago %.2f ± %.2f tokens/s, ratio %.2f (per repetition: median %.2f, %.2f–%.2f)\n",
			info.Type, t.Name(), pair.Ref.Mean, pair.Ref.Stddev, pair.Ours.Mean, pair.Ours.Stddev, pair.Ratio(), med, lo, hi)
		if t.Prompt > 0 {
			row.PP = pair
		} else {
			row.TG = pair
		}
	}
	return row, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// loadAverage is the one-minute load average from /proc/loadavg, or "?":
// on a shared machine it says how much the numbers can be trusted.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
