package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"llamago/chat"
	"llamago/engine"
	"llamago/internal/cliflag"
	"llamago/sample"
)

func runChat(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return chatLoop(ctx, args, os.Stdin, stdout, stderr)
}

// chatLoop is an interactive conversation: each user line is appended to
// the history, the whole conversation is rendered with the chat template,
// and the answer streams as it is generated. The KV cache is reused for
// the part of the rendered prompt that did not change.
func chatLoop(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("chat", "-m FILE [-c CTX] [-t THREADS] [--temp T] [--system TEXT] ...", stderr)
	var g genFlags
	g.register(fs)
	rest, err := cliflag.ParseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "llamago chat: unexpected arguments %q\n", rest)
		return 2
	}
	if g.maxTokens == 128 {
		g.maxTokens = -1 // answers end at EOS unless -n says otherwise
	}
	l, sess, err := g.open()
	if err != nil {
		fmt.Fprintf(stderr, "llamago chat: %v\n", err)
		return 1
	}
	defer l.Close()
	smp, err := sample.New(g.samplerParams(), l.Model.Config.NVocab)
	if err != nil {
		fmt.Fprintf(stderr, "llamago chat: %v\n", err)
		return 2
	}
	var history []chat.Message
	reset := func() {
		history = history[:0]
		if g.system != "" {
			history = append(history, chat.Message{Role: "system", Content: g.system})
		}
		sess.Reset()
		smp.Reset()
	}
	reset()
	fmt.Fprintln(stderr, "llamago chat: type a message; /reset starts over, /exit quits")
	in := bufio.NewScanner(stdin)
	in.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for {
		fmt.Fprint(stdout, "> ")
		if !in.Scan() {
			fmt.Fprintln(stdout)
			break
		}
		line := strings.TrimSpace(in.Text())
		switch line {
		case "":
			continue
		case "/exit", "/quit":
			return 0
		case "/reset":
			reset()
			fmt.Fprintln(stderr, "(conversation reset)")
			continue
		}
		history = append(history, chat.Message{Role: "user", Content: line})
		ids, _, err := l.ChatPrompt(history, g.chatFallbk)
		if err != nil {
			fmt.Fprintf(stderr, "llamago chat: %v\n", err)
			history = history[:len(history)-1]
			continue
		}
		// Keep the cached prefix the new prompt shares with the old one.
		common := 0
		for common < len(ids)-1 && common < sess.Len() && sess.Tokens()[common] == ids[common] {
			common++
		}
		sess.Truncate(common)
		smp.Reset()
		res, err := sess.Generate(ctx, ids[common:], engine.GenerateOptions{
			MaxTokens: g.maxTokens, Sampler: smp, Tokenizer: l.Tokenizer, Stop: g.stops,
			OnText: func(s string) error { _, err := io.WriteString(stdout, s); return err },
		})
		fmt.Fprintln(stdout)
		if err != nil {
			if errors.Is(err, engine.ErrContextFull) {
				fmt.Fprintln(stderr, "llamago chat: the conversation no longer fits the context; /reset to start over")
				history = history[:len(history)-1]
				continue
			}
			if ctx.Err() != nil {
				return 0
			}
			fmt.Fprintf(stderr, "llamago chat: %v\n", err)
			return 1
		}
		if res.StopReason == engine.StopContext {
			fmt.Fprintln(stderr, "llamago chat: the context is full; /reset to start over")
		}
		history = append(history, chat.Message{Role: "assistant", Content: res.Text})
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(stderr, "llamago chat: reading input: %v\n", err)
		return 1
	}
	return 0
}
