package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"llamago/gguf"
	"llamago/internal/cliflag"
	"llamago/tokenizer"
)

func runTokenize(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("tokenize", "-m FILE [--no-bos] [--special] [--pieces] [--] TEXT", stderr)
	modelPath := fs.String("m", "", "model or vocabulary `file` (GGUF)")
	noBOS := fs.Bool("no-bos", false, "do not add BOS (or EOS) even when the vocabulary asks for it")
	special := fs.Bool("special", false, "parse control-token texts such as </s> as those tokens")
	pieces := fs.Bool("pieces", false, "print each id with its piece")
	rest, err := cliflag.ParseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if *modelPath == "" || len(rest) != 1 {
		fs.Usage()
		return 2
	}
	f, err := gguf.Open(*modelPath)
	if err != nil {
		fmt.Fprintf(stderr, "llamago tokenize: %s: %v\n", *modelPath, err)
		return 1
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		fmt.Fprintf(stderr, "llamago tokenize: %s: %v\n", *modelPath, err)
		return 1
	}
	ids, err := tok.Encode(rest[0], tokenizer.EncodeOptions{AddSpecial: !*noBOS, ParseSpecial: *special})
	if err != nil {
		fmt.Fprintf(stderr, "llamago tokenize: %v\n", err)
		return 1
	}
	if *pieces {
		for _, id := range ids {
			fmt.Fprintf(stdout, "%6d %q\n", id, tok.TokenText(id))
		}
		return 0
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(int(id))
	}
	fmt.Fprintln(stdout, strings.Join(parts, " "))
	return 0
}
