package chat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/nikolalohinski/gonja/v2/builtins"
	controlstructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// Chat templates come from model files, which may be hostile. gonja has no
// sandbox of its own, so the guard adds one:
//
//   - no file access: include, import, from and extends are not available,
//     and the loader serves nothing but the template itself (gonja's default
//     loader reads any path, e.g. {% include '/etc/passwd' %});
//   - a deadline, checked before every statement and every write, and a cap
//     on the output size;
//   - limits on nesting, checked on the tokens before parsing and on
//     statements and macro calls while rendering: gonja's parser and
//     evaluator recurse, and a Go stack overflow kills the whole process
//     rather than failing one call;
//   - range() returns at most maxRange numbers instead of an unbounded
//     stream.
//
// What it does not stop: one expression that allocates a lot by itself,
// such as 'a' * 10**10, a replace or join that multiplies a string, or a
// huge format width. gonja evaluates those in one step with no hook to
// check sizes, so a hostile template can still make the process allocate
// far more than MaxOutput before failing, or exhaust memory.
const (
	maxSourceSize = 256 << 10 // bytes; real templates are under 20 KiB
	maxNesting    = 64        // brackets, prefix operators or block tags in the source
	maxDepth      = 256       // statements and macro calls in progress while rendering
	maxRange      = 1 << 16   // numbers one range() call may produce
)

// rootName is the name of the template for gonja's loader.
const rootName = "chat_template"

// guard holds the limits and the state of one rendering. It is used by
// the rendering goroutine only.
type guard struct {
	ctx       context.Context
	maxOutput int
	depth     int
	raised    *RaiseError     // set by raise_exception
	limitErr  error           // the first limit hit
	src       string          // the template
	toks      []*tokens.Token // its tokens, to locate syntax errors
}

// fail records err as the reason the rendering stops and returns it.
func (g *guard) fail(format string, args ...any) error {
	if g.limitErr == nil {
		g.limitErr = fmt.Errorf("%w: "+format, append([]any{ErrLimit}, args...)...)
	}
	return g.limitErr
}

// enter is called when a statement or macro call starts, leave when it ends.
func (g *guard) enter() error {
	if err := g.ctx.Err(); err != nil {
		return g.fail("%w", err)
	}
	g.depth++
	if g.depth > maxDepth {
		return g.fail("statements or macro calls nested more than %d deep", maxDepth)
	}
	return nil
}

func (g *guard) leave() { g.depth-- }

// raiseException implements raise_exception(message).
func (g *guard) raiseException(va *exec.VarArgs) (*exec.Value, error) {
	msg := ""
	if len(va.Args) > 0 {
		msg = va.Args[0].String()
	}
	if g.raised == nil {
		g.raised = &RaiseError{Message: msg}
	}
	return nil, g.raised
}

// rangeFunc implements Python's range(stop), range(start, stop[, step]) as
// a list of at most maxRange numbers.
func (g *guard) rangeFunc(va *exec.VarArgs) (*exec.Value, error) {
	var start, stop, step = 0, 0, 1
	for _, a := range va.Args {
		if !a.IsInteger() {
			return nil, errors.New("range arguments must be integers")
		}
	}
	switch len(va.Args) {
	case 1:
		stop = va.Args[0].Integer()
	case 2, 3:
		start, stop = va.Args[0].Integer(), va.Args[1].Integer()
		if len(va.Args) == 3 {
			step = va.Args[2].Integer()
		}
	default:
		return nil, errors.New("range takes 1 to 3 arguments")
	}
	if step == 0 {
		return nil, errors.New("range step must not be zero")
	}
	var n int
	if step > 0 && stop > start {
		n = int((int64(stop) - int64(start) + int64(step) - 1) / int64(step))
	} else if step < 0 && stop < start {
		n = int((int64(start) - int64(stop) - int64(step) - 1) / -int64(step))
	}
	if n > maxRange {
		return nil, g.fail("range of %d numbers (the limit is %d)", n, maxRange)
	}
	out := make([]int, n)
	for i := range out {
		out[i] = start + i*step
	}
	return exec.AsValue(out), nil
}

// checkSource rejects templates too large or too deeply nested for gonja's
// recursive parser, and reports lexical errors with their position.
func (g *guard) checkSource(src string, cfg *config.Config) error {
	if len(src) > maxSourceSize {
		return fmt.Errorf("%w: template of %d bytes (the limit is %d)", ErrLimit, len(src), maxSourceSize)
	}
	var toks []*tokens.Token
	for stream := tokens.LexAll(src, cfg); !stream.EOF(); stream.Next() {
		tok := stream.Current()
		if tok.Type == tokens.Error {
			line, col := position(src, tok)
			return &SyntaxError{Line: line, Column: col, Message: tok.Val}
		}
		toks = append(toks, tok)
	}
	g.src, g.toks = src, toks
	tooDeep := func(tok *tokens.Token, what string) error {
		line, col := position(src, tok)
		return fmt.Errorf("%w: %s nested more than %d deep at line %d, column %d", ErrLimit, what, maxNesting, line, col)
	}
	var brackets, prefixRun, blocks int
	for i, tok := range toks {
		switch tok.Type {
		case tokens.LeftParenthesis, tokens.LeftBracket, tokens.LeftBrace:
			brackets++
			if brackets > maxNesting {
				return tooDeep(tok, "brackets")
			}
		case tokens.RightParenthesis, tokens.RightBracket, tokens.RightBrace:
			brackets = max(brackets-1, 0)
		case tokens.Name:
			if i == 0 || toks[i-1].Type != tokens.BlockBegin {
				break
			}
			if strings.HasPrefix(tok.Val, "end") {
				blocks = max(blocks-1, 0)
			} else if opensBlock(tok.Val, toks[i+1:]) {
				blocks++
				if blocks > maxNesting {
					return tooDeep(tok, "blocks")
				}
			}
		}
		// A run of prefix operators (not not not x, - - - x) recurses too.
		switch tok.Type {
		case tokens.Not, tokens.Subtraction, tokens.Addition:
			prefixRun++
			if prefixRun > maxNesting {
				return tooDeep(tok, "operators")
			}
		default:
			prefixRun = 0
		}
	}
	return nil
}

// opensBlock reports whether the tag named name, whose remaining tokens are
// rest, has an end tag.
func opensBlock(name string, rest []*tokens.Token) bool {
	switch name {
	case "for", "if", "macro", "call", "filter", "with", "autoescape", "raw", "trans", "block", "generation":
		return true
	case "set":
		// {% set x %}...{% endset %} is a block, {% set x = 1 %} is not.
		for _, tok := range rest {
			switch tok.Type {
			case tokens.Assign:
				return false
			case tokens.BlockEnd:
				return true
			}
		}
	}
	return false
}

// position returns the 1-based line and column of tok in src. Lexer errors
// carry only a byte offset, so it is derived from that when needed.
func position(src string, tok *tokens.Token) (line, col int) {
	if tok.Line > 0 {
		return tok.Line, tok.Col
	}
	pos := min(max(tok.Pos, 0), len(src))
	before := src[:pos]
	line = strings.Count(before, "\n") + 1
	col = pos - (strings.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// environment builds a fresh gonja environment for one rendering: gonja's
// filters, tests and methods, its control structures minus the ones that
// read files, each wrapped by the guard, and the global functions.
func (g *guard) environment(opts Options) *exec.Environment {
	structures := map[string]parser.ControlStructureParser{}
	for _, name := range []string{
		"autoescape", "block", "filter", "for", "if", "macro", "raw", "set",
		"with", "do", "break", "continue", "trans", "call",
	} {
		if p, ok := controlstructures.All.Get(name); ok {
			structures[name] = g.wrapParser(p)
		}
	}
	structures["generation"] = g.wrapParser(generationParser)
	return &exec.Environment{
		Context:           exec.NewContext(globals(g, opts)),
		Filters:           filters(),
		Tests:             builtins.Tests,
		ControlStructures: exec.NewControlStructureSet(structures),
		Methods:           methods(),
	}
}

// wrapParser makes the statements parsed by p check the guard when they run.
func (g *guard) wrapParser(p parser.ControlStructureParser) parser.ControlStructureParser {
	return func(doc *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
		cs, err := p(doc, args)
		if err != nil {
			return nil, g.locate(err, doc.Current())
		}
		inner, ok := cs.(exec.ControlStructure)
		if !ok {
			return cs, nil
		}
		if m, ok := cs.(*controlstructures.MacroControlStructure); ok {
			return &guardedMacro{guardedStructure{inner, g}, m.Name}, nil
		}
		return &guardedStructure{inner, g}, nil
	}
}

// locate gives a position to a statement's parse error that has none: that
// of the tag the parser had just read when it failed, the last one opening
// before next.
func (g *guard) locate(err error, next *tokens.Token) error {
	var se *parser.SyntaxError
	if errors.As(err, &se) && se.Line > 0 {
		return err
	}
	var tag *tokens.Token
	for _, tok := range g.toks {
		if next != nil && next.Type != tokens.EOF && tok.Pos >= next.Pos {
			break
		}
		if tok.Type == tokens.BlockBegin {
			tag = tok
		}
	}
	if tag == nil {
		return err
	}
	line, col := position(g.src, tag)
	return &parser.SyntaxError{Message: err.Error(), Line: line, Column: col}
}

// guardedStructure is a statement that checks the deadline and the nesting
// depth before it runs.
type guardedStructure struct {
	exec.ControlStructure
	g *guard
}

func (s *guardedStructure) Execute(r *exec.Renderer, block *nodes.ControlStructureBlock) error {
	if err := s.g.enter(); err != nil {
		return err
	}
	defer s.g.leave()
	return s.ControlStructure.Execute(r, block)
}

// guardedMacro defines a macro whose calls count towards the nesting depth,
// so that a macro calling itself fails instead of overflowing the stack.
type guardedMacro struct {
	guardedStructure
	name string
}

func (s *guardedMacro) Execute(r *exec.Renderer, block *nodes.ControlStructureBlock) error {
	if err := s.guardedStructure.Execute(r, block); err != nil {
		return err
	}
	v, ok := r.Environment.Context.Get(s.name)
	if !ok {
		return nil
	}
	macro, ok := v.(exec.Macro)
	if !ok {
		return nil
	}
	g := s.g
	r.Environment.Context.Set(s.name, exec.Macro(func(params *exec.VarArgs) *exec.Value {
		if err := g.enter(); err != nil {
			return exec.AsValue(err)
		}
		defer g.leave()
		return macro(params)
	}))
	return nil
}

// limitedWriter collects the output and fails once it exceeds the size cap
// or the deadline has passed.
type limitedWriter struct {
	g *guard
	b strings.Builder
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if err := w.g.ctx.Err(); err != nil {
		return 0, w.g.fail("%w", err)
	}
	if w.b.Len()+len(p) > w.g.maxOutput {
		return 0, w.g.fail("output larger than %d bytes", w.g.maxOutput)
	}
	return w.b.Write(p)
}

// sourceLoader serves the template itself, once, and nothing else.
type sourceLoader struct {
	src    string
	served bool
}

func newSourceLoader(src string) *sourceLoader { return &sourceLoader{src: src} }

func (l *sourceLoader) Read(name string) (io.Reader, error) {
	if name != rootName || l.served {
		return nil, fmt.Errorf("chat templates cannot load other templates (%q)", name)
	}
	l.served = true
	return strings.NewReader(l.src), nil
}

func (l *sourceLoader) Resolve(name string) (string, error) {
	if name != rootName {
		return "", fmt.Errorf("chat templates cannot load other templates (%q)", name)
	}
	return name, nil
}

func (l *sourceLoader) Inherit(string) (loaders.Loader, error) { return l, nil }

// syntaxError turns gonja's parse error into a SyntaxError with the
// position of the problem when it can be found.
func syntaxError(src string, cfg *config.Config, env *exec.Environment, err error) error {
	// gonja's message embeds the whole source; keep what follows it.
	msg := strings.TrimPrefix(err.Error(), "failed to parse template '"+src+"': ")
	var se *parser.SyntaxError
	if errors.As(err, &se) && se.Line > 0 {
		// Drop gonja's own position, which SyntaxError reports.
		near := ""
		if se.Raw != "" {
			near = fmt.Sprintf(" (near %q)", se.Raw)
		}
		msg = strings.Replace(msg, fmt.Sprintf(` (Line: %d Col: %d, near "%s")`, se.Line, se.Column, se.Raw), near, 1)
		return &SyntaxError{Line: se.Line, Column: se.Column, Message: msg}
	}
	// Parse again to find where the parser stopped.
	p := parser.NewParser(rootName, tokens.LexAll(src, cfg), cfg, newSourceLoader(src), env.ControlStructures)
	if _, perr := p.Parse(); perr != nil {
		if tok := p.Current(); tok != nil && tok.Type != tokens.EOF {
			line, col := position(src, tok)
			return &SyntaxError{Line: line, Column: col, Message: msg}
		}
	}
	return &SyntaxError{Message: msg}
}
