package engine

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"llamago/backend"
	"llamago/backend/cpu"
	"llamago/backend/cuda"
	"llamago/backend/oracle"
	"llamago/chat"
	"llamago/gguf"
	"llamago/internal/hugecache"
	"llamago/model"
	"llamago/tokenizer"
)

// LoadOptions choose how a model file is run.
type LoadOptions struct {
	// Backend is "cpu" (the default), "oracle" or "cuda".
	Backend string
	// Threads for the CPU backend; < 1 means the number of physical cores.
	Threads int
	// HugePages first has the page cache hold the file in 2 MiB pages,
	// reading it again once if it is cached in 4 KiB ones, as a file just
	// written (downloaded, converted) is: the CPU backend reads the
	// weights in place through the file's memory map, and decoding
	// streams them faster through huge pages (package internal/hugecache;
	// docs/PERFORMANCE.md).
	HugePages bool
}

// Loaded is a model file opened for generation: its memory map, the model
// bound to a backend, its tokenizer and its chat template.
type Loaded struct {
	Path      string
	File      *gguf.File
	Model     *model.Model
	Tokenizer *tokenizer.Tokenizer
	// ChatTemplate is the file's tokenizer.chat_template, or "" when the
	// file carries none.
	ChatTemplate string
	backend      backend.Backend
}

// Load opens a GGUF file and prepares it for generation.
func Load(path string, opts LoadOptions) (l *Loaded, err error) {
	if opts.HugePages {
		if _, err := hugecache.Recache(path); err != nil {
			return nil, err
		}
	}
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	be, err := NewBackend(opts.Backend, opts.Threads)
	if err != nil {
		return nil, err
	}
	m, err := model.Load(f, be)
	if err != nil {
		be.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m.Config.NVocab != tok.NumTokens() {
		be.Close()
		return nil, fmt.Errorf("%s: token_embd.weight has %d rows but the vocabulary has %d tokens", path, m.Config.NVocab, tok.NumTokens())
	}
	tmpl, _ := f.String("tokenizer.chat_template")
	return &Loaded{Path: path, File: f, Model: m, Tokenizer: tok, ChatTemplate: tmpl, backend: be}, nil
}

// NewBackend returns the backend of that name ("" is "cpu").
func NewBackend(name string, threads int) (backend.Backend, error) {
	switch name {
	case "", "cpu":
		if threads < 1 {
			threads = DefaultThreads()
		}
		return cpu.New(cpu.Options{Threads: threads}), nil
	case "oracle":
		return oracle.New(), nil
	case "cuda":
		return cuda.Open()
	default:
		return nil, fmt.Errorf("engine: unknown backend %q (cpu, oracle, cuda)", name)
	}
}

// DefaultThreads is the number of physical cores (the logical CPUs halved
// when there are more than two, a guess that holds for SMT machines).
func DefaultThreads() int {
	n := runtime.NumCPU()
	if n > 2 {
		n /= 2
	}
	return n
}

// Close releases the backend and the memory map.
func (l *Loaded) Close() error {
	return errors.Join(l.backend.Close(), l.File.Close())
}

// ChatPromptParsed renders messages with the file's chat template (or the
// built-in template named fallback when the file has none) and tokenizes
// the whole result with special tokens parsed, as llama.cpp tokenizes a
// rendered template, adding BOS when the vocabulary asks for it and the
// template did not already write it. Control-token texts inside message
// contents become control tokens: use ChatPrompt for untrusted contents.
func (l *Loaded) ChatPromptParsed(msgs []chat.Message, fallback string) ([]int32, string, error) {
	text, err := l.renderChat(msgs, fallback)
	if err != nil {
		return nil, "", err
	}
	tok := l.Tokenizer
	bos := tok.TokenText(tok.BOS())
	addBOS := !(bos != "" && strings.HasPrefix(text, bos))
	ids, err := tok.Encode(text, tokenizer.EncodeOptions{AddSpecial: addBOS, ParseSpecial: true})
	if err != nil {
		return nil, "", err
	}
	return ids, text, nil
}

// TextPrompt tokenizes text as it is, with BOS as the vocabulary says and
// special-token texts kept as text. An empty text gives BOS alone.
func (l *Loaded) TextPrompt(text string) ([]int32, error) {
	return l.Tokenizer.Encode(text, tokenizer.EncodeOptions{AddSpecial: true})
}
