package chat

import (
	"sort"
	"strings"
)

// TinyLlamaTemplate is the chat template of TinyLlama-1.1B-Chat-v1.0, as
// its tokenizer_config.json ships it (the Zephyr format). Tests write it
// into synthetic GGUF files.
const TinyLlamaTemplate = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"

// llama2Template is meta-llama/Llama-2-7b-chat-hf's template. In its JSON
// the newlines inside the Jinja strings are escaped ('<<SYS>>\\n'), so the
// Jinja source holds a backslash and an n, which Jinja turns into a newline.
const llama2Template = `{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}`

// chatMLTemplate is the ChatML template of e.g.
// teknium/OpenHermes-2.5-Mistral-7B (and transformers' old default).
const chatMLTemplate = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

// llama3Template is meta-llama/Meta-Llama-3-8B-Instruct's template.
const llama3Template = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"

// builtinTemplates maps the names llama.cpp also uses for these formats to their
// Jinja sources.
var builtinTemplates = map[string]string{
	"zephyr": TinyLlamaTemplate,
	"llama2": llama2Template,
	"chatml": chatMLTemplate,
	"llama3": llama3Template,
}

// Named returns the Jinja source of the built-in template called name:
// "zephyr" (TinyLlama's), "llama2", "chatml" or "llama3".
func Named(name string) (string, bool) {
	src, ok := builtinTemplates[name]
	return src, ok
}

// Names lists the built-in template names, sorted.
func Names() []string {
	names := make([]string, 0, len(builtinTemplates))
	for n := range builtinTemplates {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Detect names the built-in format tmpl looks like, from the special
// markers it contains, or returns "" when it resembles none of them. It is
// meant for logs: rendering always uses tmpl itself.
func Detect(tmpl string) string {
	for name, src := range builtinTemplates {
		if tmpl == src {
			return name
		}
	}
	has := func(s string) bool { return strings.Contains(tmpl, s) }
	switch {
	case has("<|im_start|>"):
		return "chatml"
	case has("<|start_header_id|>") && has("<|end_header_id|>"):
		return "llama3"
	case has("[INST]") && has("<<SYS>>"):
		return "llama2"
	case has("<|user|>") && has("<|assistant|>") && !has("<|end|>"):
		// <|end|> marks Phi-3, which shares Zephyr's role headers.
		return "zephyr"
	}
	return ""
}
