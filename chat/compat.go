package chat

import (
	"fmt"
	"reflect"
	"strings"
	"unicode"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// This file closes gaps between gonja and the Jinja2 that transformers runs,
// where chat templates rely on the difference.

// pyIndex turns a Python index (negative counts from the end) into a Go one.
// gonja's own indexing rejects list[-n] on a list of n items, so
// messages[-1] of a one-message chat or text.split(x)[-1] when x does not
// occur would be None.
func pyIndex(n int, key any) (int, bool) {
	i, ok := key.(int)
	if !ok {
		return 0, false
	}
	if i < 0 {
		i += n
	}
	return i, i >= 0 && i < n
}

// pyList is a list with Python indexing, for values that templates index.
type pyList []any

// GetItem implements exec.ItemGetter.
func (l pyList) GetItem(key any) (*exec.Value, bool) {
	if i, ok := pyIndex(len(l), key); ok {
		return exec.ToValue(l[i]), true
	}
	return exec.AsValue(nil), false
}

// asPyList converts a slice or array result to a pyList, and returns other
// values unchanged.
func asPyList(v any) any {
	if _, ok := v.(pyList); ok {
		return v
	}
	rv := reflect.ValueOf(v)
	if k := rv.Kind(); k != reflect.Slice && k != reflect.Array {
		return v
	}
	l := make(pyList, rv.Len())
	for i := range l {
		l[i] = rv.Index(i).Interface()
	}
	return l
}

// filterNames are gonja's filters (builtins.Filters cannot be listed).
var filterNames = []string{
	"abs", "attr", "batch", "capitalize", "center", "default", "d", "dictsort",
	"e", "escape", "filesizeformat", "first", "float", "forceescape", "format",
	"groupby", "indent", "int", "join", "items", "last", "length", "count",
	"list", "lower", "map", "max", "min", "pprint", "random", "rejectattr",
	"reject", "replace", "reverse", "round", "safe", "selectattr", "select",
	"slice", "sort", "string", "striptags", "sum", "title", "tojson", "trim",
	"truncate", "unique", "upper", "urlencode", "urlize", "wordcount",
	"wordwrap", "xmlattr",
}

// filters returns gonja's filters with list results indexable the Python way
// (e.g. messages|selectattr('role', 'equalto', 'user')|list, then [-1]).
func filters() *exec.FilterSet {
	m := map[string]exec.FilterFunction{}
	for _, name := range filterNames {
		f, ok := builtins.Filters.Get(name)
		if !ok {
			continue
		}
		m[name] = func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
			out := f(e, in, params)
			if out == nil || !out.IsList() || out.IsError() {
				return out
			}
			return &exec.Value{Val: reflect.ValueOf(asPyList(out.Interface())), Safe: out.Safe}
		}
	}
	return exec.NewFilterSet(m)
}

// strMethodNames are gonja's string methods (its method sets cannot be
// listed).
var strMethodNames = []string{
	"capitalize", "capwords", "casefold", "center", "count", "encode",
	"endswith", "expandtabs", "find", "format", "format_map", "isalnum",
	"isalpha", "isascii", "isdecimal", "isdigit", "islower", "isnumeric",
	"isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower",
	"lstrip", "partition", "removeprefix", "removesuffix", "replace", "rfind",
	"rjust", "rpartition", "rsplit", "rstrip", "split", "splitlines",
	"startswith", "strip", "swapcase", "title", "upper", "zfill",
}

// methods returns gonja's methods with Python's behaviour for the string
// methods templates use to pick apart messages: replace's count is
// optional, strip() and split() with no argument work on whitespace, and
// the lists they return index the Python way.
func methods() exec.Methods {
	m := map[string]exec.Method[string]{}
	for _, name := range strMethodNames {
		f, ok := builtins.Methods.Str.Get(name)
		if !ok {
			continue
		}
		m[name] = func(self string, selfValue *exec.Value, args *exec.VarArgs) (any, error) {
			out, err := f(self, selfValue, args)
			return asPyList(out), err
		}
	}
	m["replace"] = strReplace
	m["strip"] = strStrip(strings.Trim, strings.TrimSpace)
	m["lstrip"] = strStrip(strings.TrimLeft, func(s string) string { return strings.TrimLeftFunc(s, unicode.IsSpace) })
	m["rstrip"] = strStrip(strings.TrimRight, func(s string) string { return strings.TrimRightFunc(s, unicode.IsSpace) })
	split := m["split"]
	m["split"] = func(self string, selfValue *exec.Value, args *exec.VarArgs) (any, error) {
		if len(args.Args) == 0 && len(args.KwArgs) == 0 || len(args.Args) == 1 && args.Args[0].IsNil() {
			return asPyList(strings.Fields(self)), nil
		}
		return split(self, selfValue, args)
	}
	all := builtins.Methods
	all.Str = exec.NewMethodSet(m)
	return all
}

// strReplace is Python's str.replace(old, new[, count]).
func strReplace(self string, _ *exec.Value, args *exec.VarArgs) (any, error) {
	if len(args.Args) < 2 || len(args.Args) > 3 || len(args.KwArgs) > 0 {
		return nil, exec.ErrInvalidCall(fmt.Errorf("replace takes 2 or 3 positional arguments, got %d", len(args.Args)))
	}
	if !args.Args[0].IsString() || !args.Args[1].IsString() {
		return nil, exec.ErrInvalidCall(fmt.Errorf("replace arguments must be strings"))
	}
	count := -1
	if len(args.Args) == 3 {
		if !args.Args[2].IsInteger() {
			return nil, exec.ErrInvalidCall(fmt.Errorf("replace count must be an integer"))
		}
		count = args.Args[2].Integer()
	}
	return strings.Replace(self, args.Args[0].String(), args.Args[1].String(), count), nil
}

// strStrip builds Python's str.strip, lstrip or rstrip: with no argument
// (or None) they remove whitespace, with a string the characters in it.
// gonja's versions fail when called with no argument.
func strStrip(trimChars func(s, cutset string) string, trimSpace func(string) string) exec.Method[string] {
	return func(self string, _ *exec.Value, args *exec.VarArgs) (any, error) {
		switch {
		case len(args.KwArgs) > 0 || len(args.Args) > 1:
			return nil, exec.ErrInvalidCall(fmt.Errorf("strip takes at most 1 positional argument"))
		case len(args.Args) == 0 || args.Args[0].IsNil():
			return trimSpace(self), nil
		case args.Args[0].IsString():
			return trimChars(self, args.Args[0].String()), nil
		}
		return nil, exec.ErrInvalidCall(fmt.Errorf("strip argument must be a string or None"))
	}
}

// generationParser parses transformers' {% generation %}...{% endgeneration %}
// block, which marks the assistant's text for training masks and renders its
// body unchanged.
func generationParser(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
	if !args.End() {
		return nil, args.Error("generation takes no arguments", args.Current())
	}
	body, end, err := p.WrapUntil("endgeneration")
	if err != nil {
		return nil, err
	}
	if !end.End() {
		return nil, end.Error("endgeneration takes no arguments", end.Current())
	}
	return &generationBlock{body: body}, nil
}

type generationBlock struct {
	body *nodes.Wrapper
}

func (b *generationBlock) Position() *tokens.Token { return b.body.Position() }
func (b *generationBlock) String() string          { return "generation" }

func (b *generationBlock) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	return r.ExecuteWrapper(b.body)
}
