package verify

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"llamago/trace"
)

// Exit statuses of Main.
const (
	ExitOK    = 0 // no check failed
	ExitFail  = 1 // some check failed, or the checks could not run
	ExitUsage = 2 // bad flags or arguments
)

const usage = `usage: llamago verify -m FILE [-p PROMPT] [--chat|--no-chat] [--reference oracle|llamacpp] [--json] [--plain]

Runs the debugging checklist on a model: traces the prompt on llamago's CPU
backend and on a reference (the float64 oracle, or llama.cpp itself), then
checks each component from the probes and prints ✅, ⚠️ or ❌ with what it
measured: weights, tokenizer (against llama.cpp's), token embedding, RoPE
tables and rotation, RMSNorm, Q/K/V projections, attention mask and
softmax, FFN, logits, and the layer-by-layer diff against the reference,
naming the first divergence. Exit status 1 when a check fails.

flags:
`

// Main runs the verify command with args (without the program and command
// names) and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("llamago verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	fs.StringVar(&o.ModelPath, "m", "", "model `FILE` (GGUF)")
	fs.StringVar(&o.Prompt, "p", "Once upon a time", "the `PROMPT`")
	useChat := fs.Bool("chat", false, "evaluate the prompt through the chat template (the default when the file has one)")
	noChat := fs.Bool("no-chat", false, "evaluate the prompt as it is, with BOS as the vocabulary says")
	fs.StringVar(&o.ChatTemplate, "chat-template", "zephyr", "built-in template for files without one (zephyr, llama2, chatml, llama3)")
	fs.StringVar(&o.Reference, "reference", ReferenceOracle, "`REFERENCE`: oracle (float64) or llamacpp")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	plain := fs.Bool("plain", false, "print ok, warn and fail instead of the markers")
	fs.IntVar(&o.Threads, "t", 0, "threads (0: the number of physical cores)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "llamago verify: "+format+"\n", a...)
		return ExitUsage
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected arguments %q (quote a prompt with spaces: -p \"...\")", fs.Args())
	}
	if *useChat && *noChat {
		return usageErr("--chat and --no-chat exclude each other")
	}
	switch {
	case *useChat:
		o.Chat = trace.ChatOn
	case *noChat:
		o.Chat = trace.ChatOff
	}
	if *jsonOut && *plain {
		return usageErr("--json and --plain exclude each other")
	}
	rep, err := Run(ctx, o)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "verify: ")
		if IsUsage(err) {
			return usageErr("%s", msg)
		}
		fmt.Fprintf(stderr, "llamago verify: %s\n", msg)
		return ExitFail
	}
	if *jsonOut {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout, *plain)
	}
	if err != nil {
		fmt.Fprintf(stderr, "llamago verify: %v\n", err)
		return ExitFail
	}
	if rep.Failed() {
		return ExitFail
	}
	return ExitOK
}
