package main

import (
	"context"
	"fmt"
	"io"

	"llamago/convert"
	"llamago/internal/cliflag"
)

func runConvert(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("convert", "IN OUT [--tokenizer tok512.bin] [--outtype auto|f32|f16|bf16|q8_0] [--name NAME]", stderr)
	tok := fs.String("tokenizer", "", "llama2.c tokenizer `file` (for llama2.c checkpoints)")
	outType := fs.String("outtype", "auto", "tensor type of the 2-D weights: auto, f32, f16, bf16 or q8_0")
	name := fs.String("name", "", "general.name of the output (default: from the input's name)")
	rest, err := cliflag.ParseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(rest) != 2 {
		fs.Usage()
		return 2
	}
	ot, err := convert.ParseOutType(*outType)
	if err != nil {
		fmt.Fprintf(stderr, "llamago convert: %v\n", err)
		return 2
	}
	if err := convert.Run(rest[0], rest[1], convert.Options{OutType: ot, Tokenizer: *tok, Name: *name}); err != nil {
		fmt.Fprintf(stderr, "llamago convert: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s\n", rest[1])
	return 0
}
