// Package verify is the "llamago verify" command: the debugging story's
// checklist, automated. It traces a prompt twice, once on llamago's CPU
// backend and once on a reference (the float64 oracle, or llama.cpp
// itself), and checks each component of the forward pass from the probes
// of the llamago run: the tokenizer against llama.cpp's, the embedding
// against the file's rows, RoPE's angles and norms, RMSNorm, the Q/K/V
// projections recomputed from the weights, attention's mask and softmax
// recomputed from the rotated queries and keys, the FFN's gating, the
// logits against the reference's, and finally the layer-by-layer diff
// that names the first probe at which the two runs part.
//
// Each check recomputes what it can from the dump and the model file
// rather than trusting statistics alone, so that a planted bug turns the
// line of the component it lives in red.
package verify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"llamago/backend"
	"llamago/chat"
	"llamago/engine"
	"llamago/gguf"
	"llamago/llamacpp"
	"llamago/probe"
	"llamago/trace"
)

// References Options.Reference accepts.
const (
	ReferenceOracle   = "oracle"
	ReferenceLlamaCpp = "llamacpp"
)

// Options describe one verification. ModelPath is required; the zero
// value of every other field is a sensible default.
type Options struct {
	ModelPath string
	Prompt    string
	Chat      trace.ChatMode
	// ChatTemplate is the built-in template for files without one
	// (zephyr when empty).
	ChatTemplate string
	// Reference is "oracle" (the default) or "llamacpp".
	Reference string
	Threads   int
	// LlamaCppLibDir is llama.cpp's library folder for the reference
	// tokenizer and the llamacpp reference; empty finds node-llama-cpp's.
	LlamaCppLibDir string

	// The planted faults of the tests, never set by the command:
	// wrapBackend wraps the llamago run's backend; editTokens alters what
	// llamago's tokenizer returned; referenceModel is the file the
	// reference run and the weight checks read, standing for a correct
	// reader of a file llamago misreads.
	wrapBackend    func(backend.Backend) backend.Backend
	editTokens     func([]int32) []int32
	referenceModel string
}

// usageError is an error in the options rather than in the model.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// IsUsage reports whether err is a problem with the options (exit status
// 2) rather than with the model or the run.
func IsUsage(err error) bool {
	var ue *usageError
	return errors.As(err, &ue)
}

func (o *Options) check() error {
	if o.ModelPath == "" {
		return &usageError{"verify: no model: give one with -m FILE"}
	}
	switch o.Reference {
	case "":
		o.Reference = ReferenceOracle
	case ReferenceOracle, ReferenceLlamaCpp:
	case "llama.cpp":
		o.Reference = ReferenceLlamaCpp
	default:
		return &usageError{fmt.Sprintf("verify: unknown reference %q (want oracle or llamacpp)", o.Reference)}
	}
	if o.Chat < trace.ChatAuto || o.Chat > trace.ChatOff {
		return &usageError{fmt.Sprintf("verify: chat mode %d is not ChatAuto, ChatOn or ChatOff", o.Chat)}
	}
	if o.ChatTemplate == "" {
		o.ChatTemplate = "zephyr"
	}
	if o.LlamaCppLibDir == "" {
		o.LlamaCppLibDir = llamacpp.DefaultLibDir()
	}
	return nil
}

// Run performs every check. A model that does not load is a report with
// a failed weights line, not an error; errors are for what prevents the
// checks from running at all (bad options, a reference that cannot run).
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	rep := &Report{Model: opts.ModelPath, Prompt: opts.Prompt, Reference: opts.Reference}
	l, err := engine.Load(opts.ModelPath, engine.LoadOptions{Threads: opts.Threads})
	if err != nil {
		rep.Checks = append(rep.Checks, Check{Component: "weights", Marker: MarkerWeights, Status: Fail,
			Summary: "the model does not load: " + err.Error()})
		rep.Notes = append(rep.Notes, "the other checks need a loaded model and did not run")
		return rep, nil
	}
	defer l.Close()
	rep.Checks = append(rep.Checks, checkWeights(l))

	refFile := l.File
	refPath := opts.ModelPath
	if opts.referenceModel != "" {
		refPath = opts.referenceModel
		if refFile, err = gguf.Open(refPath); err != nil {
			return nil, fmt.Errorf("verify: %s: %w", refPath, err)
		}
		defer refFile.Close()
	}

	toks, err := tokenize(l, opts)
	if err != nil {
		return nil, err
	}
	rep.Checks = append(rep.Checks, toks.check)
	rep.Prompt = toks.text
	rep.TokenIDs = toks.ours

	dir, err := os.MkdirTemp("", "llamago-verify-*")
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer os.RemoveAll(dir)
	// Both runs keep the KV cache in F32: an F16 cache moves attention by
	// about 1e-3, which would blur every comparison below.
	ours, err := traceDump(ctx, trace.Options{
		ModelPath: opts.ModelPath, Prompt: toks.text, TokenIDs: toks.ours, Backend: "cpu", Threads: opts.Threads,
		KVF32: true, WrapBackend: opts.wrapBackend, DumpPath: filepath.Join(dir, "llamago.safetensors"),
	})
	if err != nil {
		return nil, err
	}
	ref, err := traceDump(ctx, trace.Options{
		ModelPath: refPath, Prompt: toks.text, TokenIDs: toks.reference, Backend: opts.Reference, Threads: opts.Threads,
		KVF32: true, LlamaCppLibDir: opts.LlamaCppLibDir, DumpPath: filepath.Join(dir, "reference.safetensors"),
	})
	if err != nil {
		return nil, fmt.Errorf("verify: reference %s: %w", opts.Reference, err)
	}

	r := &run{cfg: l.Model.Config, file: refFile, ours: ours, ref: ref, ids: toks.ours, reference: referenceName(opts.Reference),
		quantized: anyQuantized(l.File, l.Model.Config.NLayer)}
	for _, c := range []func() Check{
		r.checkEmbedding, r.checkRoPETables, r.checkRoPERotation, r.checkRMSNorm, r.checkProjections,
		r.checkAttentionMask, r.checkAttentionSoftmax, r.checkFFN, r.checkLogits, r.checkDiff,
	} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rep.Checks = append(rep.Checks, c())
	}
	return rep, nil
}

// traceDump runs a trace into a dump file and reads it back.
func traceDump(ctx context.Context, o trace.Options) (*probe.DumpFile, error) {
	if _, err := trace.Run(ctx, o); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	d, err := probe.ReadDump(o.DumpPath)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	return d, nil
}

// checkWeights describes the bound model: loading already checked every
// tensor's shape against the configuration.
func checkWeights(l *engine.Loaded) Check {
	c := l.Model.Config
	return Check{Component: "weights", Marker: MarkerWeights, Status: OK,
		Summary: fmt.Sprintf("loaded: %d layers, width %d, %d heads of %d over %d KV heads, FFN %d, vocabulary %d",
			c.NLayer, c.NEmbd, c.NHead, c.HeadDim, c.NKVHead, c.NFF, c.NVocab),
		Figures: Figures{"n_layer": float64(c.NLayer), "n_embd": float64(c.NEmbd), "n_head": float64(c.NHead),
			"n_head_kv": float64(c.NKVHead), "head_dim": float64(c.HeadDim), "n_ff": float64(c.NFF), "n_vocab": float64(c.NVocab)},
	}
}

// tokens are the prompt's ids as llamago and the reference tokenize it.
type tokens struct {
	text      string  // what was tokenized (the rendered template in chat mode)
	ours      []int32 // llamago's ids, evaluated by the llamago run
	reference []int32 // the reference tokenizer's, evaluated by the reference run
	check     Check
}

// tokenize encodes the prompt both as plain text and through the chat
// template with llamago's tokenizer and, when llama.cpp's libraries are
// there, with llama.cpp's, and compares them. The ids evaluated are those
// of the chat mode asked for.
func tokenize(l *engine.Loaded, opts Options) (tokens, error) {
	edit := func(ids []int32) []int32 {
		if opts.editTokens != nil {
			return opts.editTokens(slices.Clone(ids))
		}
		return ids
	}
	plainIDs, err := l.TextPrompt(opts.Prompt)
	if err != nil {
		return tokens{}, fmt.Errorf("verify: prompt: %w", err)
	}
	chatIDs, chatText, err := l.ChatPrompt([]chat.Message{{Role: "user", Content: opts.Prompt}}, opts.ChatTemplate)
	if err != nil {
		return tokens{}, fmt.Errorf("verify: prompt: %w", err)
	}
	plainIDs, chatIDs = edit(plainIDs), edit(chatIDs)
	useChat := opts.Chat == trace.ChatOn || (opts.Chat == trace.ChatAuto && l.ChatTemplate != "")
	t := tokens{text: opts.Prompt, ours: plainIDs}
	if useChat {
		t.text, t.ours = chatText, chatIDs
	}
	if len(t.ours) == 0 {
		return tokens{}, errors.New("verify: the prompt is empty and the vocabulary adds no BOS: nothing to evaluate")
	}
	t.check = Check{Component: "tokenizer", Marker: MarkerStatistics, Figures: Figures{"tokens": float64(len(t.ours))}}

	refPlain, refChat, err := referenceTokens(l, opts.LlamaCppLibDir, opts.Prompt, chatText)
	if err != nil {
		// The oracle runs llamago's tokenizer: there is nothing to compare.
		t.reference = t.ours
		t.check.Status = Warn
		t.check.Summary = fmt.Sprintf("%d tokens; reference tokenizer unavailable (%v): the oracle shares llamago's tokenizer", len(t.ours), err)
		return t, nil
	}
	t.reference = refPlain
	if useChat {
		t.reference = refChat
	}
	var problems []string
	for _, c := range []struct {
		what      string
		ours, ref []int32
	}{{"prompt", plainIDs, refPlain}, {"chat template", chatIDs, refChat}} {
		if msg := idsDiffer(c.ours, c.ref); msg != "" {
			problems = append(problems, c.what+": "+msg)
		}
	}
	t.check.Figures["reference_tokens"] = float64(len(t.reference))
	t.check.Figures["mismatches"] = float64(len(problems))
	if len(problems) > 0 {
		t.check.Status = Fail
		t.check.Summary = "ids differ from llama.cpp's: " + strings.Join(problems, "; ")
		return t, nil
	}
	t.check.Summary = fmt.Sprintf("ids equal llama.cpp's for the prompt (%d tokens) and its chat template (%d tokens)", len(plainIDs), len(chatIDs))
	return t, nil
}

// referenceTokens tokenizes the prompt and the rendered chat text with
// llama.cpp, as engine.TextPrompt and engine.ChatPrompt do with llamago's.
func referenceTokens(l *engine.Loaded, libDir, prompt, chatText string) (plain, chatIDs []int32, err error) {
	if libDir == "" {
		return nil, nil, errors.New("llama.cpp's libraries were not found")
	}
	lib, err := llamacpp.Open(libDir)
	if err != nil {
		return nil, nil, err
	}
	m, err := lib.LoadModel(l.Path, llamacpp.ModelOptions{VocabOnly: true})
	if err != nil {
		return nil, nil, err
	}
	defer m.Close()
	if plain, err = m.Tokenize(prompt, true, false); err != nil {
		return nil, nil, err
	}
	bos := l.Tokenizer.TokenText(l.Tokenizer.BOS())
	addBOS := !(bos != "" && strings.HasPrefix(chatText, bos))
	if chatIDs, err = m.Tokenize(chatText, addBOS, true); err != nil {
		return nil, nil, err
	}
	return plain, chatIDs, nil
}

// idsDiffer describes how two id lists differ, or returns "".
func idsDiffer(ours, ref []int32) string {
	for i := range min(len(ours), len(ref)) {
		if ours[i] != ref[i] {
			return fmt.Sprintf("first at index %d: %d, reference %d", i, ours[i], ref[i])
		}
	}
	switch {
	case len(ours) > len(ref):
		return fmt.Sprintf("%d ids, reference %d (extra %v)", len(ours), len(ref), ours[len(ref):])
	case len(ours) < len(ref):
		return fmt.Sprintf("%d ids, reference %d (missing %v)", len(ours), len(ref), ref[len(ours):])
	}
	return ""
}

// referenceName is how a sentence names a reference.
func referenceName(ref string) string {
	if ref == ReferenceLlamaCpp {
		return "llama.cpp"
	}
	return "the " + ref
}
