// Package trace is the "llamago trace" command: it evaluates a prompt once
// (one prefill batch, then optionally a few greedy one-token steps) on a
// llamago backend or on llama.cpp itself, and shows what the forward pass
// computed, probe by probe: a statistics line per probe and position as
// the pass runs, a safetensors dump of every selected tensor that
// "llamago diff" compares, or both.
//
// Every backend yields the same probe names and shapes (see package probe),
// so a dump of the CPU backend, of the float64 oracle and of llama.cpp (its
// eval-callback nodes mapped to our names and layouts) can be diffed
// against each other to find the first step at which two runs part.
package trace

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"llamago/backend"
	"llamago/chat"
	"llamago/engine"
	"llamago/model"
	"llamago/probe"
)

// Backend names Options.Backend accepts besides "cpu", "oracle" and "cuda".
const (
	BackendLlamaCpp = "llamacpp"
	// dumpBackendLlamaCpp is how a llama.cpp dump names its backend.
	dumpBackendLlamaCpp = "llama.cpp"
)

// ChatMode says whether the prompt goes through the chat template.
type ChatMode int

// The chat modes.
const (
	ChatAuto ChatMode = iota // the template when the file has one
	ChatOn                   // always (a built-in template for files without one)
	ChatOff                  // the prompt as it is, with BOS as the vocabulary says
)

// Options describe one trace. The zero value of each field is a sensible
// default except ModelPath, which is required.
type Options struct {
	ModelPath string
	Prompt    string
	Chat      ChatMode
	System    string // system message when the chat template is used
	// ChatTemplate is the built-in template for files without one
	// (zephyr when empty).
	ChatTemplate string
	// TokenIDs, when not nil, are evaluated as they are instead of the
	// tokenized prompt (Prompt is then only recorded).
	TokenIDs []int32

	Backend string // "cpu" (default), "oracle", "cuda" or "llamacpp"
	Threads int    // < 1: engine.DefaultThreads
	Ctx     int    // context positions; < 1: just enough for the tokens
	KVF32   bool   // F32 KV cache (llamago and llama.cpp) instead of F16
	// Generate continues greedily this many tokens after the prompt, one
	// forward pass each, probing those steps too.
	Generate int

	// ProbeGlobs and Positions select what is recorded, in the syntax of
	// probe.ParseFilter; empty selects everything. A glob that matches no
	// probe of the model is an error, not an empty trace.
	ProbeGlobs string
	Positions  string

	// Stats receives one statistics line per probe and position, as the
	// pass runs; nil prints none. JSON makes them JSON objects, one a line.
	Stats io.Writer
	JSON  bool
	// DumpPath, when set, receives every selected tensor as safetensors.
	DumpPath string
	// StopOnNaN ends the trace at the first probe holding a NaN or Inf;
	// Run then returns an error wrapping the *probe.NonFiniteError, after
	// writing the lines and the dump up to that probe.
	StopOnNaN bool

	// WrapBackend, when set, wraps the llamago backend before the model
	// binds its weights: tests plant faults through it.
	WrapBackend func(backend.Backend) backend.Backend
	// LlamaCppLibDir is the folder of llama.cpp's libraries for the
	// llamacpp backend; empty finds node-llama-cpp's (llamacpp.DefaultLibDir).
	LlamaCppLibDir string
}

// Result describes a finished trace.
type Result struct {
	Info         probe.DumpInfo // what the dump's metadata records
	PromptTokens int            // token ids evaluated as the prompt batch
	Emitted      int            // tensors recorded (probe and position pairs)
}

// Run performs the trace. Errors name what was wrong; a trace stopped by
// StopOnNaN returns its *probe.NonFiniteError wrapped.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	l, err := engine.Load(opts.ModelPath, engine.LoadOptions{Backend: opts.llamagoBackend(), Threads: opts.Threads})
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	defer l.Close()

	ids, promptText, err := opts.tokens(l)
	if err != nil {
		return nil, err
	}
	nLayer := l.Model.Config.NLayer
	filter, err := checkSelection(opts.ProbeGlobs, opts.Positions, nLayer, len(ids)+opts.Generate)
	if err != nil {
		return nil, err
	}
	ctxLen := opts.Ctx
	if ctxLen < 1 {
		ctxLen = len(ids) + opts.Generate
	}
	if len(ids)+opts.Generate > ctxLen {
		return nil, usageErrorf("trace: %d prompt tokens and %d generated ones do not fit a context of %d (raise -c)", len(ids), opts.Generate, ctxLen)
	}

	res := &Result{PromptTokens: len(ids)}
	res.Info = probe.DumpInfo{Prompt: promptText, ModelPath: opts.ModelPath, Backend: opts.dumpBackendName(), Created: time.Now()}
	if opts.DumpPath != "" {
		if res.Info.ModelSHA256, err = fileSHA256(opts.ModelPath); err != nil {
			return nil, err
		}
	}

	var rec *recorder
	var sinks []probe.Sink
	counter := &countSink{}
	sinks = append(sinks, counter)
	if opts.DumpPath != "" {
		rec = &recorder{}
		sinks = append(sinks, rec)
	}
	switch {
	case opts.Stats != nil && opts.JSON:
		sinks = append(sinks, newJSONStats(opts.Stats))
	case opts.Stats != nil:
		sinks = append(sinks, probe.NewStatsWriter(opts.Stats, probe.StatsOptions{NameWidth: nameWidth(nLayer)}))
	}
	if opts.StopOnNaN {
		// Last, so that the dump and the statistics hold the probe that
		// stopped the trace.
		sinks = append(sinks, probe.StopOnNaN())
	}
	set := probe.NewSet(filter, sinks...)

	var generated []int32
	var runErr error
	if opts.Backend == BackendLlamaCpp {
		generated, runErr = runLlamaCpp(ctx, opts, l, ids, ctxLen, set)
	} else {
		generated, runErr = runLlamago(ctx, opts, l, ids, ctxLen, set)
	}
	if err := set.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("trace: %w", err)
	}
	if runErr == nil {
		runErr = set.Err()
	}
	res.Info.TokenIDs = append(append([]int32{}, ids...), generated...)
	res.Emitted = counter.n

	// The dump is written even after a failure, so that the tensors up
	// to a NaN can be read.
	if rec != nil && (runErr == nil || len(rec.entries) > 0) {
		if err := rec.writeDump(opts.DumpPath, res.Info); err != nil {
			return res, errors.Join(runErr, fmt.Errorf("trace: %w", err))
		}
	}
	if runErr != nil {
		return res, runErr
	}
	return res, nil
}

// check validates the options that need no model.
func (o *Options) check() error {
	if o.ModelPath == "" {
		return errors.New("trace: no model: give one with -m FILE")
	}
	switch o.Backend {
	case "", "cpu", "oracle", "cuda":
	case BackendLlamaCpp, "llama.cpp":
		o.Backend = BackendLlamaCpp
		if o.WrapBackend != nil {
			return errors.New("trace: a backend wrapper applies to llamago's backends, not to llama.cpp")
		}
	default:
		return fmt.Errorf("trace: unknown backend %q (want cpu, oracle, cuda or llamacpp)", o.Backend)
	}
	if o.Generate < 0 {
		return fmt.Errorf("trace: -n %d: the number of tokens to generate cannot be negative", o.Generate)
	}
	if o.Ctx < 0 {
		return fmt.Errorf("trace: -c %d: the context cannot be negative", o.Ctx)
	}
	if o.Chat < ChatAuto || o.Chat > ChatOff {
		return fmt.Errorf("trace: chat mode %d is not ChatAuto, ChatOn or ChatOff", o.Chat)
	}
	return nil
}

// llamagoBackend is the backend engine.Load binds: the asked one, or for
// llama.cpp runs the CPU backend, whose weights stay in the memory map, as
// only the tokenizer and the model's shape are used then.
func (o *Options) llamagoBackend() string {
	if o.Backend == BackendLlamaCpp {
		return "cpu"
	}
	return o.Backend
}

// dumpBackendName is the backend as a dump's metadata records it, with
// the KV cache type, which moves attention probes by about 1e-3.
func (o *Options) dumpBackendName() string {
	name := o.Backend
	switch name {
	case "":
		name = "cpu"
	case BackendLlamaCpp:
		name = dumpBackendLlamaCpp
	}
	if o.WrapBackend != nil {
		name += " (wrapped)"
	}
	if o.Backend == "oracle" {
		return name + ", float64 throughout" // its cache ignores --kv-f32
	}
	if o.KVF32 {
		return name + ", F32 KV"
	}
	return name + ", F16 KV"
}

// tokens returns the token ids to evaluate and the text they encode.
func (o *Options) tokens(l *engine.Loaded) ([]int32, string, error) {
	if o.TokenIDs != nil {
		if len(o.TokenIDs) == 0 {
			return nil, "", errors.New("trace: no token ids to evaluate")
		}
		n := l.Model.Config.NVocab
		for i, id := range o.TokenIDs {
			if id < 0 || int(id) >= n {
				return nil, "", usageErrorf("trace: token id %d (index %d) is outside the vocabulary of %d", id, i, n)
			}
		}
		return append([]int32{}, o.TokenIDs...), o.Prompt, nil
	}
	useChat := o.Chat == ChatOn || (o.Chat == ChatAuto && l.ChatTemplate != "")
	var ids []int32
	text := o.Prompt
	var err error
	if useChat {
		var msgs []chat.Message
		if o.System != "" {
			msgs = append(msgs, chat.Message{Role: "system", Content: o.System})
		}
		msgs = append(msgs, chat.Message{Role: "user", Content: o.Prompt})
		fallback := o.ChatTemplate
		if fallback == "" {
			fallback = "zephyr"
		}
		ids, text, err = l.ChatPrompt(msgs, fallback)
	} else {
		ids, err = l.TextPrompt(o.Prompt)
	}
	if err != nil {
		return nil, "", fmt.Errorf("trace: prompt: %w", err)
	}
	if len(ids) == 0 {
		return nil, "", errors.New("trace: the prompt is empty and the vocabulary adds no BOS: nothing to evaluate")
	}
	return ids, text, nil
}

// runLlamago evaluates ids in one batch on a llamago backend, then
// generates greedily, one token per forward pass.
func runLlamago(ctx context.Context, opts Options, l *engine.Loaded, ids []int32, ctxLen int, set *probe.Set) ([]int32, error) {
	m := l.Model
	if opts.WrapBackend != nil {
		be, err := engine.NewBackend(opts.llamagoBackend(), opts.Threads)
		if err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		defer be.Close()
		if m, err = model.Load(l.File, opts.WrapBackend(be)); err != nil {
			return nil, fmt.Errorf("trace: %s: %w", opts.ModelPath, err)
		}
	}
	st, err := m.NewState(model.StateOptions{MaxBatch: len(ids), Ctx: ctxLen, KVF32: opts.KVF32})
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	sess := engine.NewSession(m, st, 0)
	sess.Probes = set
	logits, err := sess.Eval(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	var generated []int32
	for range opts.Generate {
		id := argmax(logits)
		generated = append(generated, id)
		if logits, err = sess.Eval(ctx, []int32{id}); err != nil {
			return generated, fmt.Errorf("trace: %w", err)
		}
	}
	return generated, nil
}

// argmax is greedy sampling: the first of the largest logits.
func argmax(logits []float32) int32 {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	return int32(best)
}

// fileSHA256 returns the hex SHA-256 of a file's bytes.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("trace: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("trace: hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// nameWidth fits the longest probe name of a model of nLayer layers.
func nameWidth(nLayer int) int {
	return len(probe.LayerName(max(nLayer-1, 0), probe.KindAttnScores)) + 1
}

// describe formats a short summary of a finished trace for stderr.
func describe(res *Result, dumpPath string) string {
	var sb strings.Builder
	gen := len(res.Info.TokenIDs) - res.PromptTokens
	fmt.Fprintf(&sb, "llamago trace: %d prompt tokens", res.PromptTokens)
	if gen > 0 {
		fmt.Fprintf(&sb, " and %d generated", gen)
	}
	fmt.Fprintf(&sb, " on %s; %d tensors recorded", res.Info.Backend, res.Emitted)
	if dumpPath != "" {
		fmt.Fprintf(&sb, ", dump written to %s", dumpPath)
	}
	return sb.String()
}
