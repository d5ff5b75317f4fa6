package chat

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustNamed(t testing.TB, name string) string {
	t.Helper()
	src, ok := Named(name)
	if !ok {
		t.Fatalf("Named(%q) not found", name)
	}
	return src
}

var (
	oneTurn   = []Message{{"user", "1"}}
	multiTurn = []Message{
		{"system", "You are helpful."},
		{"user", "Hi"},
		{"assistant", "Hello!"},
		{"user", "Who are you?"},
	}
)

// The expected strings are the formats the models' cards document, written
// out by hand.
func TestRenderBuiltins(t *testing.T) {
	tests := []struct {
		name, template string
		msgs           []Message
		opts           Options
		want           string
	}{
		{
			name: "tinyllama one turn", template: TinyLlamaTemplate, msgs: oneTurn,
			opts: Options{AddGenerationPrompt: true, BOSToken: "<s>", EOSToken: "</s>"},
			want: "<|user|>\n1</s>\n<|assistant|>\n",
		},
		{
			name: "tinyllama one turn without generation prompt", template: TinyLlamaTemplate, msgs: oneTurn,
			opts: Options{EOSToken: "</s>"},
			want: "<|user|>\n1</s>\n",
		},
		{
			name: "tinyllama multi turn with system", template: TinyLlamaTemplate, msgs: multiTurn,
			opts: Options{AddGenerationPrompt: true, BOSToken: "<s>", EOSToken: "</s>"},
			want: "<|system|>\nYou are helpful.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n<|user|>\nWho are you?</s>\n<|assistant|>\n",
		},
		{
			name: "zephyr is tinyllama's", template: mustNamed(t, "zephyr"), msgs: oneTurn,
			opts: Options{AddGenerationPrompt: true, EOSToken: "</s>"},
			want: "<|user|>\n1</s>\n<|assistant|>\n",
		},
		{
			name: "chatml", template: mustNamed(t, "chatml"), msgs: multiTurn,
			opts: Options{AddGenerationPrompt: true},
			want: "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\n",
		},
		{
			name: "llama2", template: mustNamed(t, "llama2"), msgs: multiTurn,
			opts: Options{AddGenerationPrompt: true, BOSToken: "<s>", EOSToken: "</s>"},
			want: "<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Who are you? [/INST]",
		},
		{
			name: "llama2 strips messages", template: mustNamed(t, "llama2"), msgs: []Message{{"user", "  hi \n"}},
			opts: Options{BOSToken: "<s>", EOSToken: "</s>"},
			want: "<s>[INST] hi [/INST]",
		},
		{
			name: "llama3", template: mustNamed(t, "llama3"), msgs: multiTurn,
			opts: Options{AddGenerationPrompt: true, BOSToken: "<|begin_of_text|>", EOSToken: "<|eot_id|>"},
			want: "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nWho are you?<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\n",
		},
		{
			name: "llama3 trims content", template: mustNamed(t, "llama3"), msgs: []Message{{"user", "  x  "}},
			opts: Options{},
			want: "<|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render(tt.template, tt.msgs, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// Jinja features common templates use, with the results Jinja2 gives under
// transformers' settings (trim_blocks, lstrip_blocks).
func TestRenderJinjaFeatures(t *testing.T) {
	msgs := []Message{{"system", " sys "}, {"user", "u"}}
	tests := []struct{ name, template, want string }{
		{"loop variables", "{% for m in messages %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }};{% endfor %}", "01TrueFalse;12FalseTrue;"},
		{"item and attribute access", "{{ messages[0]['role'] }}={{ messages[0].role }}", "system=system"},
		{"negative index on a one-item list", "{{ messages[1:][-1].content }}|{{ 'a'.split('x')[-1] }}", "u|a"},
		{"trim filter and strip method", "[{{ messages[0].content|trim }}][{{ messages[0].content.strip() }}][{{ messages[0].content.rstrip() }}]", "[sys][sys][ sys]"},
		{"length", "{{ messages|length }}{{ 'abc'|length }}", "23"},
		{"concatenation", "{{ 'a' + messages[1].content + 'b' }}", "aub"},
		{"is defined", "{% if tools is defined %}T{% else %}F{% endif %}{% if messages is defined %}D{% endif %}", "FD"},
		{"namespace", "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}", "2"},
		{"whitespace control", "a  {%- if true -%}  b  {%- endif -%}  c", "abc"},
		{"trim_blocks removes the newline after a block tag", "{% if true %}\nx\n{% endif %}\ny", "x\ny"},
		{"lstrip_blocks removes indentation before a block tag", "  {% if true %}\n  x\n  {% endif %}\n", "  x\n"},
		{"no trimming after expressions", "{{ 'x' }}\ny", "x\ny"},
		{"one final newline dropped", "x\n\n", "x\n"},
		{"selectattr and list", "{{ (messages|selectattr('role', 'equalto', 'user')|list)[-1].content }}", "u"},
		{"replace without count", "{{ 'a-b-c'.replace('-', '+') }}", "a+b+c"},
		{"split on whitespace", "{{ ' a  b '.split()|length }}", "2"},
		{"escaped newline in a string literal", `{{ 'a\nb' }}`, "a\nb"},
		{"range", "{% for i in range(3) %}{{ i }}{% endfor %}{% for i in range(5, 0, -2) %}{{ i }}{% endfor %}", "012531"},
		{"generation block", "{% generation %}x{% endgeneration %}", "x"},
		{"strftime_now", "{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d') }}", "05 Mar 2024 2024-03-05"},
	}
	opts := Options{Now: time.Date(2024, 3, 5, 10, 0, 0, 0, time.UTC)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render(tt.template, msgs, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRaiseException(t *testing.T) {
	// Two user turns in a row break llama2's alternation rule.
	_, err := Render(mustNamed(t, "llama2"), []Message{{"user", "a"}, {"user", "b"}}, Options{})
	var re *RaiseError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want a RaiseError", err)
	}
	if want := "Conversation roles must alternate user/assistant/user/assistant/..."; re.Message != want {
		t.Errorf("message %q, want %q", re.Message, want)
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		name, template string
		line, col      int
		mentions       string
	}{
		{"unclosed expression", "ab\ncd {{ 'x' }", 2, 12, "delimiter"},
		{"dangling operator", "{% for m in messages %}\n  {{ m.role + }}\n{% endfor %}", 2, 15, "expected"},
		{"missing endfor", "{% for m in messages %}\n{{ m.role }}\n", 2, 13, "endfor"}, // where the input ends
		{"empty if", "x\n{% if %}{% endif %}", 2, 1, `"if"`},
		{"unknown tag", "{% frobnicate %}", 1, 4, "frobnicate"},
		{"include is not available", "{% include '/etc/passwd' %}", 1, 4, "include"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(tt.template, oneTurn, Options{})
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a SyntaxError", err)
			}
			if se.Line != tt.line || se.Column != tt.col {
				t.Errorf("position %d:%d, want %d:%d (%v)", se.Line, se.Column, tt.line, tt.col, err)
			}
			if !strings.Contains(se.Message, tt.mentions) {
				t.Errorf("message %q does not mention %q", se.Message, tt.mentions)
			}
			if strings.Contains(err.Error(), tt.template) && len(tt.template) > 20 {
				t.Errorf("error repeats the whole template: %v", err)
			}
		})
	}
}

func TestRuntimeErrors(t *testing.T) {
	for _, tmpl := range []string{
		"{{ foo.bar }}",
		"{{ undefined_function() }}",
		"{{ 1 % 0 }}", // gonja panics; Render must not
		"{{ range(1, 2, 0) }}",
	} {
		if _, err := Render(tmpl, oneTurn, Options{}); err == nil {
			t.Errorf("%q: no error", tmpl)
		}
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		name, template string
		opts           Options
	}{
		{"loop without end", "{% for i in range(65536) %}{% for j in range(65536) %}{% endfor %}{% endfor %}", Options{Timeout: 100 * time.Millisecond}},
		{"output too large", "{% for i in range(1000) %}{{ '0123456789' }}{% endfor %}", Options{MaxOutput: 5000}},
		{"huge range", "{% for i in range(100000000) %}{% endfor %}", Options{}},
		{"recursive macro", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", Options{}},
		{"deep brackets", "{{ " + strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000) + " }}", Options{}},
		{"deep blocks", strings.Repeat("{% if true %}", 10000) + strings.Repeat("{% endif %}", 10000), Options{}},
		{"operator chain", "{{ " + strings.Repeat("not ", 100000) + "true }}", Options{}},
		{"huge template", strings.Repeat("x", maxSourceSize+1), Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := Render(tt.template, oneTurn, tt.opts)
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("got %v, want ErrLimit", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v to fail", d)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	tests := []struct{ template, want string }{
		{TinyLlamaTemplate, "zephyr"},
		{mustNamed(t, "chatml"), "chatml"},
		{mustNamed(t, "llama2"), "llama2"},
		{mustNamed(t, "llama3"), "llama3"},
		{"{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}", "chatml"},
		{"<|start_header_id|>{{ role }}<|end_header_id|>", "llama3"},
		{"{{ '<|user|>' }}...{{ '<|assistant|>' }}{{ '<|end|>' }}", ""}, // Phi-3
		{"{{ messages[0].content }}", ""},
	}
	for _, tt := range tests {
		if got := Detect(tt.template); got != tt.want {
			t.Errorf("Detect(%.40q) = %q, want %q", tt.template, got, tt.want)
		}
	}
}

func TestNamed(t *testing.T) {
	if got := strings.Join(Names(), ","); got != "chatml,llama2,llama3,zephyr" {
		t.Errorf("Names() = %s", got)
	}
	if _, ok := Named("nope"); ok {
		t.Error("Named(nope) found a template")
	}
	for _, name := range Names() {
		src := mustNamed(t, name)
		if _, err := Render(src, multiTurn, Options{AddGenerationPrompt: true}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestStrftime(t *testing.T) {
	at := time.Date(2024, 7, 26, 15, 4, 5, 0, time.UTC)
	tests := []struct{ format, want string }{
		{"%d %b %Y", "26 Jul 2024"},
		{"%B %d, %Y", "July 26, 2024"},
		{"%Y-%m-%d %H:%M:%S", "2024-07-26 15:04:05"},
		{"%a %A %I%p %j %y", "Fri Friday 03PM 208 24"},
		{"100%% %Q %", "100% %Q %"},
	}
	for _, tt := range tests {
		if got := strftime(at, tt.format); got != tt.want {
			t.Errorf("strftime(%q) = %q, want %q", tt.format, got, tt.want)
		}
	}
}

func BenchmarkRenderTinyLlama(b *testing.B) {
	for b.Loop() {
		if _, err := Render(TinyLlamaTemplate, multiTurn, Options{AddGenerationPrompt: true, EOSToken: "</s>"}); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzRender(f *testing.F) {
	for _, name := range Names() {
		f.Add(mustNamed(f, name))
	}
	f.Add("{% for m in messages %}{{ m.role }}{% endfor %}")
	f.Add("{{ 1 % 0 }}")
	f.Fuzz(func(t *testing.T, tmpl string) {
		// Any template must give text or an error, quickly, never a crash.
		_, _ = Render(tmpl, multiTurn, Options{Timeout: 200 * time.Millisecond, MaxOutput: 1 << 16})
	})
}

// Renderings share nothing: they may run at the same time.
func TestRenderConcurrently(t *testing.T) {
	want, err := Render(TinyLlamaTemplate, multiTurn, Options{AddGenerationPrompt: true, EOSToken: "</s>"})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			got, err := Render(TinyLlamaTemplate, multiTurn, Options{AddGenerationPrompt: true, EOSToken: "</s>"})
			if err == nil && got != want {
				err = errors.New("different output: " + got)
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
