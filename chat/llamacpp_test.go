package chat

import (
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ebitengine/purego"

	"llamago/internal/testenv"
)

// llamaChatMessage mirrors llama.h's struct llama_chat_message.
type llamaChatMessage struct {
	role, content *byte
}

// llamaCppApplyTemplate formats msgs with llama.cpp's
// llama_chat_apply_template, which recognises a template by its markers and
// writes the format in C++ (it is not a Jinja engine).
func llamaCppApplyTemplate(t *testing.T, tmpl string, msgs []Message, addAssistant bool) string {
	t.Helper()
	dir := testenv.RequireLlamaCpp(t)
	lib, err := purego.Dlopen(filepath.Join(dir, "libllama.v0.4.0.so"), purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		t.Fatalf("loading libllama: %v", err)
	}
	var apply func(tmpl *byte, chat *llamaChatMessage, n uintptr, addAss bool, buf *byte, length int32) int32
	purego.RegisterLibFunc(&apply, lib, "llama_chat_apply_template")

	cstr := func(s string) *byte { b := append([]byte(s), 0); return &b[0] }
	// The C side reads Go memory that holds Go pointers: pin what they
	// point to for the duration of the call.
	var pin runtime.Pinner
	defer pin.Unpin()
	chat := make([]llamaChatMessage, len(msgs))
	for i, m := range msgs {
		chat[i] = llamaChatMessage{cstr(m.Role), cstr(m.Content)}
		pin.Pin(chat[i].role)
		pin.Pin(chat[i].content)
	}
	buf := make([]byte, 1<<16)
	n := apply(cstr(tmpl), &chat[0], uintptr(len(chat)), addAssistant, &buf[0], int32(len(buf)))
	if n < 0 || int(n) > len(buf) {
		t.Fatalf("llama_chat_apply_template returned %d", n)
	}
	return string(buf[:n])
}

// llama.cpp's built-in formats agree with the Jinja rendering for ChatML and
// Llama 3 (without a BOS token, which llama.cpp leaves to the tokenizer).
// For TinyLlama's template it guesses a different format (see the report in
// TestLlamaCppDiffers).
func TestAgainstLlamaCpp(t *testing.T) {
	for _, name := range []string{"chatml", "llama3"} {
		t.Run(name, func(t *testing.T) {
			src := mustNamed(t, name)
			for _, add := range []bool{false, true} {
				want := llamaCppApplyTemplate(t, src, multiTurn, add)
				got, err := Render(src, multiTurn, Options{AddGenerationPrompt: add, EOSToken: "</s>"})
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("add_generation_prompt=%v:\nllama.cpp %q\nours      %q", add, want, got)
				}
			}
		})
	}
}

// For TinyLlama's and Llama 2's templates llama.cpp's guess differs from
// what Jinja renders; this records how, so a change on either side shows.
func TestLlamaCppDiffers(t *testing.T) {
	tests := []struct{ name, template, want string }{
		// TinyLlama's template has <|user|> and <|assistant|> but no </s>
		// literal, so llama.cpp takes it for GLM-Edge: no EOS, no newline.
		{"tinyllama", TinyLlamaTemplate, "<|system|>\nYou are helpful.<|user|>\nHi<|assistant|>\nHello!<|user|>\nWho are you?<|assistant|>"},
		// content.strip() makes it llama2-sys-strip: no BOS, no spaces
		// around the answer.
		{"llama2", mustNamed(t, "llama2"), "[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHi [/INST]Hello!</s>[INST] Who are you? [/INST]"},
	}
	for _, tt := range tests {
		if got := llamaCppApplyTemplate(t, tt.template, multiTurn, true); got != tt.want {
			t.Errorf("%s: llama.cpp gives %q, expected %q", tt.name, got, tt.want)
		}
	}
}
