package trace

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"llamago/internal/cliflag"
	"llamago/probe"
)

// Exit statuses of Main.
const (
	ExitOK    = 0
	ExitFail  = 1 // the trace ran into an error, or stopped at a NaN
	ExitUsage = 2 // bad flags or arguments
)

const usage = `usage: llamago trace -m FILE -p PROMPT [flags]

Evaluates the prompt in one batch (then -n tokens greedily, one at a time)
and shows every probe of the forward pass: a statistics line per probe and
position (probe, position, shape, RMS, mean, min, max, NaN and Inf counts,
first values), and with --dump a safetensors file of the tensors, with the
token ids, the prompt, the model's SHA-256 and the backend in its metadata,
for "llamago diff". Without --dump, --stats is on.

--backend llamacpp runs llama.cpp itself (node-llama-cpp's libraries) on
llamago's token ids, its graph nodes mapped to the same probes; use --kv-f32
on both sides for a tight comparison.

flags:
`

// Main runs the trace command with args (without the program and command
// names) and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("llamago trace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	fs.StringVar(&o.ModelPath, "m", "", "model `FILE` (GGUF)")
	fs.StringVar(&o.Prompt, "p", "", "the `PROMPT`")
	useChat := fs.Bool("chat", false, "apply the chat template (the default when the file has one)")
	noChat := fs.Bool("no-chat", false, "use the prompt as it is, with BOS as the vocabulary says")
	fs.StringVar(&o.System, "system", "", "system message for the chat template")
	fs.StringVar(&o.ChatTemplate, "chat-template", "zephyr", "built-in template for files without one (zephyr, llama2, chatml, llama3)")
	ids := fs.String("ids", "", "evaluate these comma-separated token `IDS` instead of the tokenized prompt")
	fs.StringVar(&o.ProbeGlobs, "probe", "", "record only probes matching `GLOBS` (comma-separated; * matches dots too: blk.0.*, *.q_rope)")
	fs.StringVar(&o.Positions, "pos", "", "record only these `POSITIONS` (3, 0-7, 3,5)")
	stats := fs.Bool("stats", false, "print a statistics line per probe and position (the default without --dump)")
	fs.BoolVar(&o.JSON, "json", false, "print the statistics as JSON objects, one a line (implies --stats)")
	fs.StringVar(&o.DumpPath, "dump", "", "write the tensors to `OUT.safetensors`")
	fs.BoolVar(&o.StopOnNaN, "stop-on-nan", false, "stop at the first probe holding a NaN or Inf (exit status 1)")
	fs.StringVar(&o.Backend, "backend", "cpu", "`BACKEND`: cpu, oracle (float64), cuda or llamacpp")
	fs.IntVar(&o.Ctx, "c", 0, "context size (0: just the tokens traced)")
	fs.IntVar(&o.Threads, "t", 0, "threads (0: the number of physical cores)")
	fs.BoolVar(&o.KVF32, "kv-f32", false, "keep the KV cache in F32 (llamago and llama.cpp) instead of F16")
	fs.IntVar(&o.Generate, "n", 0, "then generate `N` tokens greedily, one forward pass each, probing them too")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}

	rest, err := cliflag.ParseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		return ExitUsage // flag has printed the problem and the usage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "llamago trace: "+format+"\n", a...)
		return ExitUsage
	}
	if len(rest) > 0 {
		return usageErr("unexpected arguments %q (quote a prompt with spaces: -p \"...\")", rest)
	}
	if *useChat && *noChat {
		return usageErr("--chat and --no-chat exclude each other")
	}
	switch {
	case *useChat:
		o.Chat = ChatOn
	case *noChat:
		o.Chat = ChatOff
	}
	if *ids != "" {
		if o.TokenIDs, err = parseIDs(*ids); err != nil {
			return usageErr("--ids: %v", err)
		}
		if o.Prompt != "" || o.Chat == ChatOn {
			return usageErr("--ids replaces the prompt: give either --ids or -p, --chat")
		}
	}
	if *stats || o.JSON || o.DumpPath == "" {
		o.Stats = stdout
	}
	if err := o.check(); err != nil {
		return usageErr("%s", strings.TrimPrefix(err.Error(), "trace: "))
	}

	res, err := Run(ctx, o)
	if err != nil {
		var nf *probe.NonFiniteError
		if errors.As(err, &nf) {
			fmt.Fprintf(stderr, "llamago trace: stopped: %s at position %d holds %d NaN and %d Inf values (first at index %d)\n",
				nf.Probe, nf.Pos, nf.NaN, nf.Inf, nf.Index)
			if o.DumpPath != "" && res != nil && res.Emitted > 0 {
				fmt.Fprintf(stderr, "llamago trace: the dump up to that probe is in %s\n", o.DumpPath)
			}
			return ExitFail
		}
		fmt.Fprintf(stderr, "llamago trace: %s\n", strings.TrimPrefix(err.Error(), "trace: "))
		var ue *usageError
		if errors.As(err, &ue) {
			return ExitUsage
		}
		return ExitFail
	}
	fmt.Fprintln(stderr, describe(res, o.DumpPath))
	return ExitOK
}

// parseIDs reads "1,2,3" (spaces allowed).
func parseIDs(s string) ([]int32, error) {
	var out []int32
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseInt(f, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a token id", f)
		}
		out = append(out, int32(v))
	}
	if len(out) == 0 {
		return nil, errors.New("no token ids")
	}
	return out, nil
}
