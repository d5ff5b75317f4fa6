// Command llamago runs, inspects, converts and verifies LLaMA-family
// language models stored in GGUF files.
//
// Usage:
//
//	llamago <command> [flags] [arguments]
//
// Run "llamago help" for the list of commands and "llamago <command> -h"
// for one command's flags.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand. run returns the process exit status.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() map[string]command {
	return map[string]command{
		"inspect":  {"show a GGUF file's metadata, tensors and model shape", runInspect},
		"diff":     {"compare two probe dumps and name the first divergence", runDiff},
		"run":      {"generate text from a prompt", runRun},
		"trace":    {"show or dump every probe of a forward pass (llamago or llama.cpp)", runTrace},
		"chat":     {"talk with a model interactively", runChat},
		"tokenize": {"print the token ids of a text", runTokenize},
		"quantize": {"quantize a GGUF model (q8_0, q4_0, q4_k_m, ...)", runQuantize},
		"convert":  {"convert a llama2.c checkpoint or a Hugging Face llama directory to GGUF", runConvert},
		"serve":    {"serve an OpenAI-compatible HTTP API with continuous batching", runServe},
		"verify":   {"run the debugging checklist on a model against a reference", runVerify},
		"bench":    {"measure prompt and generation speed (llama-bench style)", runBench},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "llamago: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: llamago <command> [flags] [arguments]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'llamago <command> -h' for a command's flags.")
}
