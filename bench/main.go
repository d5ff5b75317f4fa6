// Package bench measures how fast a model runs, in the spirit of
// llama.cpp's llama-bench: prompt processing (pp: one batch of p random
// tokens from an empty cache) and token generation (tg: n single-token
// decode steps from an empty cache), in tokens per second, as the mean
// and standard deviation over repetitions after a warm-up run.
//
// The same Engine interface drives llamago and llama.cpp (through the
// libllama harness), so that the two can be timed alternately in one
// process: on a shared, noisy machine only such interleaved ratios mean
// anything. Main is the "llamago bench" command.
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"

	"llamago/engine"
	"llamago/internal/hugecache"
	"llamago/llamacpp"
)

// Config is what one "llamago bench" run measures.
type Config struct {
	Models  []string
	Threads []int
	Prompts []int // pp tests; 0 entries are skipped
	Gens    []int // tg tests; 0 entries are skipped
	Reps    int
	Batch   int    // most tokens per forward pass
	Backend string // "cpu", "oracle" or "llamacpp"
	// LlamaCppVariant picks llama.cpp's CPU library for the llamacpp
	// backend ("" lets ggml choose, "icelake" is its AVX-512 build).
	LlamaCppVariant string
	Seed            uint64
	// HugePages has the page cache hold each model file in 2 MiB pages
	// before it is loaded, reading it again once if it is cached in 4 KiB
	// ones (package internal/hugecache): a file just written is.
	HugePages bool
	// Log, when not nil, receives a line describing the backend where it
	// has one to give (the CUDA backend: its GPU and whether cuBLAS
	// computes F16 prefill products), before that backend's rows.
	Log io.Writer
}

// Tests lists the pp tests, then the tg tests.
func (c *Config) Tests() []Test {
	var ts []Test
	for _, p := range c.Prompts {
		if p > 0 {
			ts = append(ts, Test{Prompt: p})
		}
	}
	for _, n := range c.Gens {
		if n > 0 {
			ts = append(ts, Test{Gen: n})
		}
	}
	return ts
}

func (c *Config) check() error {
	switch {
	case len(c.Models) == 0:
		return errors.New("bench: no model given (-m FILE)")
	case len(c.Tests()) == 0:
		return errors.New("bench: nothing to measure: -p and -n are both 0")
	case c.Reps < 1:
		return fmt.Errorf("bench: %d repetitions", c.Reps)
	case c.Batch < 1:
		return fmt.Errorf("bench: batch size %d", c.Batch)
	}
	for _, t := range c.Threads {
		if t < 1 {
			return fmt.Errorf("bench: %d threads", t)
		}
	}
	return nil
}

// ctxLen is the context every engine needs: the longest test.
func (c *Config) ctxLen() int {
	n := 1
	for _, t := range c.Tests() {
		n = max(n, t.Tokens())
	}
	return n
}

// batchLen is the batch size engines are made with: no larger than the
// longest prompt, since activation buffers grow with it.
func (c *Config) batchLen() int {
	longest := 1
	for _, p := range c.Prompts {
		longest = max(longest, p)
	}
	return min(c.Batch, longest)
}

// Run measures every model, thread count and test of c, calling emit with
// each row as soon as it is measured.
func Run(ctx context.Context, c Config, emit func(Row) error) error {
	if err := c.check(); err != nil {
		return err
	}
	if len(c.Threads) == 0 {
		c.Threads = []int{engine.DefaultThreads()}
	}
	for _, path := range c.Models {
		if c.HugePages {
			if _, err := hugecache.Recache(path); err != nil {
				return fmt.Errorf("bench: %w", err)
			}
		}
		for _, threads := range c.Threads {
			if err := runModel(ctx, c, path, threads, emit); err != nil {
				return err
			}
		}
	}
	return nil
}

func runModel(ctx context.Context, c Config, path string, threads int, emit func(Row) error) error {
	e, info, closeAll, err := openEngine(c, path, threads)
	if err != nil {
		return err
	}
	defer closeAll()
	rng := rand.New(rand.NewPCG(c.Seed, 0x6c6c616d61676f)) // "llamago"
	for _, t := range c.Tests() {
		if err := Warmup(ctx, e, info, t, rng); err != nil {
			return err
		}
		samples := make([]float64, 0, c.Reps)
		for range c.Reps {
			tps, err := RunOnce(ctx, e, info, t, rng)
			if err != nil {
				return err
			}
			samples = append(samples, tps)
		}
		if err := emit(NewRow(info, e.Name(), threads, t, samples)); err != nil {
			return err
		}
	}
	return nil
}

// openEngine loads path for c's backend with the given threads.
func openEngine(c Config, path string, threads int) (Engine, ModelInfo, func(), error) {
	if c.Backend == "llamacpp" {
		return openLlamaCpp(c, path, threads)
	}
	l, err := engine.Load(path, engine.LoadOptions{Backend: c.Backend, Threads: threads})
	if err != nil {
		return nil, ModelInfo{}, nil, fmt.Errorf("bench: %w", err)
	}
	info, err := Describe(path, l.File)
	if err != nil {
		l.Close()
		return nil, ModelInfo{}, nil, err
	}
	if d, ok := l.Model.Backend().(interface{ Describe() string }); ok && c.Log != nil {
		fmt.Fprintf(c.Log, "llamago bench: %s\n", d.Describe())
	}
	e, err := NewLlamago(l, c.Backend, c.batchLen(), c.ctxLen())
	if err != nil {
		l.Close()
		return nil, ModelInfo{}, nil, err
	}
	return e, info, func() { l.Close() }, nil
}

func openLlamaCpp(c Config, path string, threads int) (Engine, ModelInfo, func(), error) {
	lib, err := llamacpp.OpenWith(llamacpp.DefaultLibDir(), llamacpp.OpenOptions{CPUVariant: c.LlamaCppVariant})
	if err != nil {
		return nil, ModelInfo{}, nil, fmt.Errorf("bench: %w", err)
	}
	info, err := DescribeFile(path)
	if err != nil {
		return nil, ModelInfo{}, nil, err
	}
	m, err := lib.LoadModel(path, llamacpp.ModelOptions{})
	if err != nil {
		return nil, ModelInfo{}, nil, fmt.Errorf("bench: %w", err)
	}
	name := "llama.cpp"
	if c.LlamaCppVariant != "" {
		name += " " + c.LlamaCppVariant
	}
	e, err := NewLlamaCpp(m, name, c.batchLen(), c.ctxLen(), threads)
	if err != nil {
		m.Close()
		return nil, ModelInfo{}, nil, err
	}
	return e, info, func() { e.Close(); m.Close() }, nil
}

// Main is the "llamago bench" command: it parses args, runs the
// benchmark and prints a markdown table (or JSON lines with --json) to
// stdout. It returns the process exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: llamago bench -m FILE [-m FILE...] [-t THREADS] [-p 512] [-n 128] [-r 5] [--json]")
		fs.PrintDefaults()
	}
	var models stringList
	fs.Var(&models, "m", "model `file` (GGUF); repeat or separate with commas for several")
	threads := intList{}
	fs.Var(&threads, "t", "thread `counts`, comma-separated (default: the physical cores)")
	prompts := intList{512}
	fs.Var(&prompts, "p", "prompt `lengths` for pp tests, comma-separated; 0 skips")
	gens := intList{128}
	fs.Var(&gens, "n", "generated `tokens` for tg tests, comma-separated; 0 skips")
	reps := fs.Int("r", 5, "repetitions of each test")
	batch := fs.Int("b", 512, "batch `size`: most tokens per forward pass")
	backendName := fs.String("backend", "cpu", "`engine`: cpu, oracle, cuda, or llamacpp (llama.cpp through its libraries)")
	variant := fs.String("llamacpp-variant", "default", "llama.cpp CPU build for --backend llamacpp: default (ggml picks) or a libggml-cpu-`NAME`.so such as icelake")
	asJSON := fs.Bool("json", false, "print one JSON object per row (JSON Lines) instead of a markdown table")
	seed := fs.Uint64("seed", 1, "seed of the random token ids")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measurements to `file`")
	hugePages := fs.Bool("huge-pages", false, "first have the page cache hold each model file in 2 MiB pages, reading it again once if it is cached in 4 KiB ones (as a file just written is)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "llamago bench: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	c := Config{
		Models: models, Threads: threads, Prompts: prompts, Gens: gens,
		Reps: *reps, Batch: *batch, Backend: *backendName, Seed: *seed, HugePages: *hugePages,
		Log: stderr,
	}
	if *variant != "default" {
		c.LlamaCppVariant = *variant
	}
	if err := c.check(); err != nil {
		fmt.Fprintf(stderr, "llamago bench: %v\n", err)
		fs.Usage()
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "llamago bench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "llamago bench: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	emit := func(r Row) error { return WriteJSON(stdout, r) }
	if !*asJSON {
		io.WriteString(stdout, MarkdownHeader)
		emit = func(r Row) error { return WriteMarkdownRow(stdout, r) }
	}
	if err := Run(ctx, c, emit); err != nil {
		fmt.Fprintf(stderr, "llamago bench: %v\n", err)
		return 1
	}
	return 0
}

// stringList is a flag that collects values, repeated or comma-separated.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			*s = append(*s, f)
		}
	}
	return nil
}

// intList is a comma-separated list of non-negative integers; setting it
// replaces the default.
type intList []int

func (l *intList) String() string {
	parts := make([]string, len(*l))
	for i, n := range *l {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

func (l *intList) Set(v string) error {
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a non-negative integer", f)
		}
		out = append(out, n)
	}
	*l = out
	return nil
}
