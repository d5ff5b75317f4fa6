package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"llamago/chat"
	"llamago/engine"
	"llamago/internal/cliflag"
	"llamago/model"
	"llamago/sample"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// genFlags are the flags shared by run and chat.
type genFlags struct {
	modelPath  string
	ctxSize    int
	threads    int
	hugePages  bool
	backend    string
	maxTokens  int
	temp       float64
	topK       int
	topP       float64
	minP       float64
	seed       int64
	repeatPen  float64
	repeatN    int
	freqPen    float64
	presPen    float64
	stops      stringList
	system     string
	chatFallbk string
}

func (g *genFlags) register(fs *flag.FlagSet) {
	d := sample.DefaultParams()
	fs.StringVar(&g.modelPath, "m", "", "model `file` (GGUF)")
	fs.IntVar(&g.ctxSize, "c", 0, "context size in tokens (0: the model's, at most 4096)")
	fs.IntVar(&g.threads, "t", 0, "threads (0: the number of physical cores)")
	fs.BoolVar(&g.hugePages, "huge-pages", false, "first have the page cache hold the model file in 2 MiB pages (faster decoding; reads a file just written once more)")
	fs.StringVar(&g.backend, "backend", "cpu", "backend: cpu, oracle or cuda")
	fs.IntVar(&g.maxTokens, "n", 128, "tokens to generate (-1: until the context is full)")
	fs.Float64Var(&g.temp, "temp", float64(d.Temperature), "temperature (0: greedy)")
	fs.IntVar(&g.topK, "top-k", d.TopK, "top-k sampling (0: off)")
	fs.Float64Var(&g.topP, "top-p", float64(d.TopP), "top-p sampling (1: off)")
	fs.Float64Var(&g.minP, "min-p", float64(d.MinP), "min-p sampling (0: off)")
	fs.Int64Var(&g.seed, "seed", -1, "random seed (-1: from the clock)")
	fs.Float64Var(&g.repeatPen, "repeat-penalty", float64(d.RepeatPenalty), "repetition penalty (1: off)")
	fs.IntVar(&g.repeatN, "repeat-last-n", d.RepeatLastN, "tokens the penalties look back on")
	fs.Float64Var(&g.freqPen, "frequency-penalty", 0, "frequency penalty (0: off)")
	fs.Float64Var(&g.presPen, "presence-penalty", 0, "presence penalty (0: off)")
	fs.Var(&g.stops, "stop", "stop `string` (repeatable)")
	fs.StringVar(&g.system, "system", "", "system message for the chat template")
	fs.StringVar(&g.chatFallbk, "chat-template", "zephyr", "built-in template for files without one (zephyr, llama2, chatml, llama3)")
}

func (g *genFlags) samplerParams() sample.Params {
	seed := uint64(g.seed)
	if g.seed < 0 {
		seed = uint64(time.Now().UnixNano())
	}
	return sample.Params{
		Temperature: float32(g.temp), TopK: g.topK, TopP: float32(g.topP), MinP: float32(g.minP),
		RepeatPenalty: float32(g.repeatPen), RepeatLastN: g.repeatN,
		FrequencyPenalty: float32(g.freqPen), PresencePenalty: float32(g.presPen), Seed: seed,
	}
}

// open loads the model and a one-sequence state with a context of the
// requested size (the model's, capped at 4096, when 0).
func (g *genFlags) open() (*engine.Loaded, *engine.Session, error) {
	if g.modelPath == "" {
		return nil, nil, errors.New("no model: give one with -m FILE")
	}
	l, err := engine.Load(g.modelPath, engine.LoadOptions{Backend: g.backend, Threads: g.threads, HugePages: g.hugePages})
	if err != nil {
		return nil, nil, err
	}
	ctx := g.ctxSize
	if ctx <= 0 {
		ctx = min(l.Model.Config.NCtxTrain, 4096)
	}
	st, err := l.Model.NewState(model.StateOptions{MaxBatch: min(ctx, 512), Ctx: ctx})
	if err != nil {
		l.Close()
		return nil, nil, err
	}
	return l, engine.NewSession(l.Model, st, 0), nil
}

// runResult is the --json output of run.
type runResult struct {
	PromptIDs       []int32 `json:"prompt_ids"`
	GeneratedIDs    []int32 `json:"generated_ids"`
	Text            string  `json:"text"`
	StopReason      string  `json:"stop_reason"`
	PrefillTokensPS float64 `json:"prefill_tokens_per_second"`
	DecodeTokensPS  float64 `json:"decode_tokens_per_second"`
}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", "-m FILE -p PROMPT [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p M] [--seed S] [-c CTX] [-t THREADS] [--chat|--no-chat] [--system TEXT] [--json]", stderr)
	var g genFlags
	g.register(fs)
	prompt := fs.String("p", "", "prompt")
	useChat := fs.Bool("chat", false, "apply the chat template to the prompt (the default when the file has one)")
	noChat := fs.Bool("no-chat", false, "use the prompt as it is, with BOS as the vocabulary says")
	asJSON := fs.Bool("json", false, "print one JSON object instead of streaming text")
	rest, err := cliflag.ParseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "llamago run: unexpected arguments %q\n", rest)
		return 2
	}
	if *useChat && *noChat {
		fmt.Fprintln(stderr, "llamago run: --chat and --no-chat exclude each other")
		return 2
	}
	l, sess, err := g.open()
	if err != nil {
		fmt.Fprintf(stderr, "llamago run: %v\n", err)
		return 1
	}
	defer l.Close()

	chatMode := *useChat || (!*noChat && l.ChatTemplate != "")
	var ids []int32
	if chatMode {
		var msgs []chat.Message
		if g.system != "" {
			msgs = append(msgs, chat.Message{Role: "system", Content: g.system})
		}
		msgs = append(msgs, chat.Message{Role: "user", Content: *prompt})
		ids, _, err = l.ChatPrompt(msgs, g.chatFallbk)
	} else {
		ids, err = l.TextPrompt(*prompt)
	}
	if err == nil && len(ids) == 0 {
		err = errors.New("the prompt is empty and the vocabulary adds no BOS: nothing to continue from")
	}
	if err != nil {
		fmt.Fprintf(stderr, "llamago run: %v\n", err)
		return 1
	}
	smp, err := sample.New(g.samplerParams(), l.Model.Config.NVocab)
	if err != nil {
		fmt.Fprintf(stderr, "llamago run: %v\n", err)
		return 2
	}
	opts := engine.GenerateOptions{MaxTokens: g.maxTokens, Sampler: smp, Tokenizer: l.Tokenizer, Stop: g.stops}
	if !*asJSON {
		opts.OnText = func(s string) error {
			_, err := io.WriteString(stdout, s)
			return err
		}
	}
	res, err := sess.Generate(ctx, ids, opts)
	if err != nil {
		fmt.Fprintf(stderr, "\nllamago run: %v\n", err)
		return 1
	}
	if res.StopReason == engine.StopContext {
		fmt.Fprintf(stderr, "\nllamago run: stopped: the context of %d tokens is full (use -c to enlarge it)\n", sess.Ctx())
	}
	if *asJSON {
		out := runResult{
			PromptIDs: res.PromptIDs, GeneratedIDs: res.GeneratedIDs, Text: res.Text, StopReason: string(res.StopReason),
			PrefillTokensPS: res.PrefillTokensPerSecond(), DecodeTokensPS: res.DecodeTokensPerSecond(),
		}
		if out.GeneratedIDs == nil {
			out.GeneratedIDs = []int32{}
		}
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(stderr, "llamago run: %v\n", err)
			return 1
		}
	} else {
		fmt.Fprintln(stdout)
	}
	fmt.Fprintf(stderr, "llamago: prompt %d tokens, %.1f tok/s; generated %d tokens, %.1f tok/s; stop: %s\n",
		len(res.PromptIDs), res.PrefillTokensPerSecond(), len(res.GeneratedIDs), res.DecodeTokensPerSecond(), res.StopReason)
	return 0
}
