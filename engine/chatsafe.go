package engine

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"llamago/chat"
	"llamago/tokenizer"
)

// ChatPrompt renders messages with the file's chat template (or the
// built-in template named fallback when the file has none) and tokenizes
// the result: the template's own markup has its control tokens (such as
// "</s>" or "<|im_start|>") parsed, but text inside a message content is
// always tokenized as text, so a user cannot forge a turn. For contents
// without control-token texts the ids equal ChatPromptParsed's, which is
// how llama.cpp tokenizes a rendered template.
//
// It renders the template with a sentinel in place of each content, so it
// knows where every content lies in the rendered text. Templates that alter
// the contents (so the sentinels do not come back verbatim, once each, in
// order) are rendered normally and tokenized with special tokens parsed only
// when no content holds a control-token text; otherwise it fails.
func (l *Loaded) ChatPrompt(msgs []chat.Message, fallback string) ([]int32, string, error) {
	tok := l.Tokenizer
	specials := controlTexts(tok)
	marked := make([]chat.Message, len(msgs))
	sentinels := make([]string, len(msgs))
	prefix := uniqueSentinelPrefix(msgs)
	for i, m := range msgs {
		sentinels[i] = fmt.Sprintf("%s%d\ue001", prefix, i)
		marked[i] = chat.Message{Role: m.Role, Content: sentinels[i]}
	}
	text, err := l.renderChat(marked, fallback)
	if err != nil {
		return nil, "", err
	}
	// Split the rendered text into template parts and contents.
	var pieces []safePiece
	rest := text
	var full strings.Builder
	ok := true
	for i, s := range sentinels {
		at := strings.Index(rest, s)
		if at < 0 || strings.Contains(rest[at+len(s):], s) {
			ok = false
			break
		}
		pieces = append(pieces, safePiece{text: rest[:at]}, safePiece{text: msgs[i].Content, content: true})
		full.WriteString(rest[:at])
		full.WriteString(msgs[i].Content)
		rest = rest[at+len(s):]
	}
	if !ok || strings.Contains(rest, prefix) {
		return l.chatPromptChecked(msgs, fallback, specials)
	}
	pieces = append(pieces, safePiece{text: rest})
	full.WriteString(rest)
	text = full.String()

	bos := tok.TokenText(tok.BOS())
	var ids, tail []int32
	if bos == "" || !strings.HasPrefix(text, bos) {
		// Encode adds BOS and EOS (or not) as the vocabulary says.
		added, err := tok.Encode("", tokenizer.EncodeOptions{AddSpecial: true})
		if err != nil {
			return nil, "", err
		}
		if len(added) > 0 && added[0] == tok.BOS() {
			ids, added = append(ids, added[0]), added[1:]
		}
		tail = added
	}
	for _, f := range splitSpecials(pieces, specials) {
		if f.token != tokenizer.NoToken {
			ids = append(ids, f.token)
			continue
		}
		part, err := tok.Encode(f.text, tokenizer.EncodeOptions{})
		if err != nil {
			return nil, "", err
		}
		ids = append(ids, part...)
	}
	return append(ids, tail...), text, nil
}

// renderChat renders msgs with the file's template or the named fallback.
func (l *Loaded) renderChat(msgs []chat.Message, fallback string) (string, error) {
	tmpl := l.ChatTemplate
	if tmpl == "" {
		var ok bool
		if tmpl, ok = chat.Named(fallback); !ok {
			return "", fmt.Errorf("engine: %s has no chat template and %q is not a built-in one (%s)", l.Path, fallback, strings.Join(chat.Names(), ", "))
		}
	}
	tok := l.Tokenizer
	text, err := chat.Render(tmpl, msgs, chat.Options{AddGenerationPrompt: true, BOSToken: tok.TokenText(tok.BOS()), EOSToken: tok.TokenText(tok.EOS())})
	if err != nil {
		return "", fmt.Errorf("engine: chat template: %w", err)
	}
	return text, nil
}

// chatPromptChecked is the fallback for templates that rewrite contents:
// ChatPromptParsed, refused when a content holds a control-token text.
func (l *Loaded) chatPromptChecked(msgs []chat.Message, fallback string, specials []controlText) ([]int32, string, error) {
	for i, m := range msgs {
		for _, s := range specials {
			if strings.Contains(m.Content, s.text) {
				return nil, "", fmt.Errorf("engine: message %d contains the control token %q and the chat template rewrites contents, so it cannot be kept as text", i, s.text)
			}
		}
	}
	return l.ChatPromptParsed(msgs, fallback)
}

// safePiece is a span of the rendered prompt: template markup, or a
// message's content.
type safePiece struct {
	text    string
	content bool
}

// safeFragment is a control token, or text to tokenize with specials off.
type safeFragment struct {
	text  string
	token int32
}

// controlText is a control token and its text.
type controlText struct {
	text string
	id   int32
}

// controlTexts lists the control tokens, longest text first, the order in
// which the tokenizer looks for them.
func controlTexts(tok *tokenizer.Tokenizer) []controlText {
	var out []controlText
	for id := range int32(tok.NumTokens()) {
		if tok.IsControl(id) {
			if s := tok.TokenText(id); s != "" {
				out = append(out, controlText{s, id})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b controlText) int { return cmp.Compare(len(b.text), len(a.text)) })
	return out
}

// splitSpecials finds the control tokens in the template pieces (never in
// contents), longest first like the tokenizer, and joins the text between
// them, so each text fragment is tokenized as it would be in the whole.
func splitSpecials(pieces []safePiece, specials []controlText) []safeFragment {
	type frag struct {
		text    string
		token   int32
		content bool
	}
	frags := make([]frag, 0, len(pieces))
	for _, p := range pieces {
		if p.text != "" {
			frags = append(frags, frag{text: p.text, token: tokenizer.NoToken, content: p.content})
		}
	}
	for _, s := range specials {
		var next []frag
		for _, f := range frags {
			if f.content || f.token != tokenizer.NoToken || !strings.Contains(f.text, s.text) {
				next = append(next, f)
				continue
			}
			rest := f.text
			for {
				i := strings.Index(rest, s.text)
				if i < 0 {
					break
				}
				if i > 0 {
					next = append(next, frag{text: rest[:i], token: tokenizer.NoToken})
				}
				next = append(next, frag{token: s.id})
				rest = rest[i+len(s.text):]
			}
			if rest != "" {
				next = append(next, frag{text: rest, token: tokenizer.NoToken})
			}
		}
		frags = next
	}
	var out []safeFragment
	for _, f := range frags {
		if f.token == tokenizer.NoToken && len(out) > 0 && out[len(out)-1].token == tokenizer.NoToken {
			out[len(out)-1].text += f.text
			continue
		}
		out = append(out, safeFragment{text: f.text, token: f.token})
	}
	return out
}

// uniqueSentinelPrefix returns a private-use marker that no content holds.
func uniqueSentinelPrefix(msgs []chat.Message) string {
	for n := 0; ; n++ {
		p := fmt.Sprintf("\ue000llamago%d:", n)
		clash := false
		for _, m := range msgs {
			if strings.Contains(m.Content, "\ue000") && strings.Contains(m.Content, p) {
				clash = true
				break
			}
		}
		if !clash {
			return p
		}
	}
}
