// Package chat turns a conversation into the prompt text a chat model was
// trained on, by rendering the Jinja chat template that GGUF files carry in
// tokenizer.chat_template.
//
// Rendering follows Hugging Face transformers' apply_chat_template: the
// template sees messages, add_generation_prompt, bos_token and eos_token,
// can call raise_exception and strftime_now, and is compiled with
// trim_blocks and lstrip_blocks on. The Jinja engine is gonja
// (github.com/nikolalohinski/gonja/v2), run inside a sandbox (see guard.go)
// because templates come from untrusted model files.
package chat

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
)

// Message is one turn of a conversation. Role is what the template compares
// against, usually "system", "user" or "assistant".
type Message struct {
	Role    string
	Content string
}

// Limits applied when Options leaves them zero.
const (
	DefaultTimeout   = 2 * time.Second
	DefaultMaxOutput = 4 << 20 // bytes of rendered prompt
)

// Options are the values a chat template sees besides the messages, and the
// limits on rendering it.
type Options struct {
	// AddGenerationPrompt asks the template to end with the header that opens
	// the assistant's turn, so the model answers rather than continuing the
	// user's message.
	AddGenerationPrompt bool
	// BOSToken and EOSToken are the text of the model's special tokens
	// (bos_token and eos_token in the template), e.g. "<s>" and "</s>".
	BOSToken, EOSToken string

	// Timeout bounds the wall time of one rendering (DefaultTimeout if zero).
	Timeout time.Duration
	// MaxOutput bounds the size in bytes of the rendered text
	// (DefaultMaxOutput if zero).
	MaxOutput int
	// Now is the time strftime_now reports (the current time if zero); tests
	// set it to get reproducible output.
	Now time.Time
}

// RaiseError is the error a template reports by calling
// raise_exception(message), e.g. when roles do not alternate.
type RaiseError struct {
	Message string
}

func (e *RaiseError) Error() string { return "chat: template raised an exception: " + e.Message }

// SyntaxError reports a template that does not parse. Line and Column are
// 1-based; they are 0 when gonja could not tell where the error is.
type SyntaxError struct {
	Line, Column int
	Message      string
}

func (e *SyntaxError) Error() string {
	if e.Line == 0 {
		return "chat: template syntax error: " + e.Message
	}
	return fmt.Sprintf("chat: template syntax error at line %d, column %d: %s", e.Line, e.Column, e.Message)
}

// ErrLimit is wrapped by the errors of renderings stopped by a limit: time,
// output size, nesting or recursion depth, or the size of a value.
var ErrLimit = errors.New("chat: template exceeds a rendering limit")

// Render renders the chat template tmpl (Jinja source) for msgs.
func Render(tmpl string, msgs []Message, opts Options) (string, error) {
	return RenderContext(context.Background(), tmpl, msgs, opts)
}

// RenderContext is Render that also stops when ctx is done.
func RenderContext(ctx context.Context, tmpl string, msgs []Message, opts Options) (string, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxOutput <= 0 {
		opts.MaxOutput = DefaultMaxOutput
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	type result struct {
		text string
		err  error
	}
	done := make(chan result, 1)
	// gonja cannot be interrupted from outside: the rendering runs in its own
	// goroutine so that a template stuck past the deadline does not hold the
	// caller. The guard makes that goroutine stop at its next statement or
	// write once ctx is done, so it does not keep running for long either.
	go func() {
		var r result
		defer func() {
			// gonja panics on some inputs (e.g. integer division by zero);
			// a model file must not be able to crash the program.
			if p := recover(); p != nil {
				r = result{err: fmt.Errorf("chat: rendering template: internal error in the Jinja engine: %v", p)}
			}
			done <- r
		}()
		r.text, r.err = render(ctx, tmpl, msgs, opts)
	}()
	select {
	case r := <-done:
		return r.text, r.err
	case <-ctx.Done():
		return "", fmt.Errorf("%w: %w", ErrLimit, ctx.Err())
	}
}

// render parses and executes the template under the guard's limits.
func render(ctx context.Context, tmpl string, msgs []Message, opts Options) (string, error) {
	g := &guard{ctx: ctx, maxOutput: opts.MaxOutput}
	cfg := config.New()
	// transformers compiles chat templates with trim_blocks and
	// lstrip_blocks; templates are written expecting that.
	cfg.TrimBlocks = true
	cfg.LeftStripBlocks = true
	// Like Jinja by default (transformers does not change it), one newline
	// at the very end of the template is not part of the output.
	cfg.KeepTrailingNewline = false

	if err := g.checkSource(tmpl, cfg); err != nil {
		return "", err
	}
	env := g.environment(opts)
	t, err := exec.NewTemplate(rootName, cfg, newSourceLoader(tmpl), env)
	if err != nil {
		return "", syntaxError(tmpl, cfg, env, err)
	}

	out := &limitedWriter{g: g}
	data := exec.NewContext(map[string]any{
		"messages":              newMessageList(msgs),
		"add_generation_prompt": opts.AddGenerationPrompt,
		"bos_token":             opts.BOSToken,
		"eos_token":             opts.EOSToken,
	})
	if err := t.Execute(out, data); err != nil {
		switch {
		case g.raised != nil:
			return "", g.raised
		case g.limitErr != nil:
			return "", g.limitErr
		}
		return "", fmt.Errorf("chat: rendering template: %s", tidyEngineError(err))
	}
	return out.b.String(), nil
}

// tidyEngineError drops gonja's generic prefix from a runtime error; the
// rest names each enclosing statement with its line, then the cause.
func tidyEngineError(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "unable to execute template: ")
	return msg
}

// messageList is the value of messages in a template. It is its own type so
// that indexing follows Python: gonja's built-in indexing rejects
// messages[-n] on a list of n items (messages[-1] of a one-message chat).
// Slicing with step 1 keeps the type, so loop_messages = messages[1:] behaves
// the same.
type messageList []map[string]any

func newMessageList(msgs []Message) messageList {
	l := make(messageList, len(msgs))
	for i, m := range msgs {
		l[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	return l
}

// GetItem implements exec.ItemGetter.
func (l messageList) GetItem(key any) (*exec.Value, bool) {
	if i, ok := pyIndex(len(l), key); ok {
		return exec.AsValue(l[i]), true
	}
	return exec.AsValue(nil), false
}

// globals are the functions every template can call, from gonja's builtins
// (namespace, range, dict, ...) plus those transformers adds.
func globals(g *guard, opts Options) map[string]any {
	m := map[string]any{}
	for _, name := range []string{"cycler", "dict", "joiner", "namespace"} {
		if f, ok := builtins.GlobalFunctions.Get(name); ok {
			m[name] = f
		}
	}
	m["range"] = g.rangeFunc
	m["raise_exception"] = g.raiseException
	now := opts.Now
	m["strftime_now"] = func(va *exec.VarArgs) (*exec.Value, error) {
		if len(va.Args) != 1 || !va.Args[0].IsString() {
			return nil, errors.New("strftime_now takes one format string")
		}
		return exec.AsValue(strftime(now, va.Args[0].String())), nil
	}
	return m
}
