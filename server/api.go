package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxBodyBytes bounds a request body; prompts beyond it cannot fit any
// context this server runs anyway.
const maxBodyBytes = 8 << 20

// Message is one chat turn. Content may be a string or OpenAI's list of
// parts, of which the text parts are joined.
type Message struct {
	Role    string      `json:"role"`
	Content TextContent `json:"content"`
}

// TextContent is a message content: a JSON string, null, or an array of
// {"type":"text","text":...} parts.
type TextContent string

// UnmarshalJSON accepts a string, null or a list of text parts.
func (c *TextContent) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*c = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = TextContent(s)
		return nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(b, &parts); err != nil {
		return errors.New("content must be a string or a list of text parts")
	}
	var sb strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return fmt.Errorf("content part of type %q is not supported (only text)", p.Type)
		}
		sb.WriteString(p.Text)
	}
	*c = TextContent(sb.String())
	return nil
}

// StringList is a JSON string or array of strings (stop, prompt).
type StringList []string

// UnmarshalJSON accepts a string, null or a list of strings.
func (l *StringList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*l = nil
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = StringList{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return errors.New("must be a string or a list of strings")
	}
	*l = ss
	return nil
}

// StreamOptions are OpenAI's stream_options.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// SamplingFields are the generation settings both endpoints take; nil
// means the server's default.
type SamplingFields struct {
	Model               string         `json:"model"`
	MaxTokens           *int           `json:"max_tokens"`
	MaxCompletionTokens *int           `json:"max_completion_tokens"`
	Temperature         *float64       `json:"temperature"`
	TopP                *float64       `json:"top_p"`
	TopK                *int           `json:"top_k"`
	MinP                *float64       `json:"min_p"`
	Seed                *int64         `json:"seed"`
	Stop                StringList     `json:"stop"`
	PresencePenalty     *float64       `json:"presence_penalty"`
	FrequencyPenalty    *float64       `json:"frequency_penalty"`
	RepeatPenalty       *float64       `json:"repeat_penalty"`
	N                   *int           `json:"n"`
	Stream              bool           `json:"stream"`
	StreamOptions       *StreamOptions `json:"stream_options"`
}

// ChatRequest is the body of POST /v1/chat/completions.
type ChatRequest struct {
	SamplingFields
	Messages []Message `json:"messages"`
}

// CompletionRequest is the body of POST /v1/completions.
type CompletionRequest struct {
	SamplingFields
	Prompt StringList `json:"prompt"`
}

// DecodeChatRequest reads and checks a chat request. Unknown fields are
// ignored, as OpenAI clients send many; known fields of the wrong type are
// errors.
func DecodeChatRequest(r io.Reader) (*ChatRequest, error) {
	var req ChatRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	if len(req.Messages) == 0 {
		return nil, &apiError{status: 400, msg: "messages must hold at least one message", param: "messages"}
	}
	for i, m := range req.Messages {
		if m.Role == "" {
			return nil, &apiError{status: 400, msg: fmt.Sprintf("messages[%d] has no role", i), param: "messages"}
		}
	}
	if err := req.SamplingFields.check(); err != nil {
		return nil, err
	}
	return &req, nil
}

// DecodeCompletionRequest reads and checks a completion request.
func DecodeCompletionRequest(r io.Reader) (*CompletionRequest, error) {
	var req CompletionRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	if len(req.Prompt) != 1 {
		return nil, &apiError{status: 400, msg: fmt.Sprintf("prompt must be one string (got %d)", len(req.Prompt)), param: "prompt"}
	}
	if err := req.SamplingFields.check(); err != nil {
		return nil, err
	}
	return &req, nil
}

func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(io.LimitReader(r, maxBodyBytes))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			te.Field = strings.TrimPrefix(te.Field, "SamplingFields.")
			return &apiError{status: 400, msg: fmt.Sprintf("field %q must be of type %s, not %s", te.Field, te.Type, te.Value), param: te.Field}
		}
		return &apiError{status: 400, msg: "malformed JSON body: " + err.Error()}
	}
	if dec.More() {
		return &apiError{status: 400, msg: "malformed JSON body: data after the object"}
	}
	return nil
}

// check validates the ranges the sampler does not check itself.
func (f *SamplingFields) check() error {
	if f.N != nil && *f.N != 1 {
		return &apiError{status: 400, msg: "only n = 1 is supported", param: "n"}
	}
	if f.MaxTokens != nil && *f.MaxTokens < 0 {
		return &apiError{status: 400, msg: "max_tokens must not be negative", param: "max_tokens"}
	}
	if f.MaxCompletionTokens != nil && *f.MaxCompletionTokens < 0 {
		return &apiError{status: 400, msg: "max_completion_tokens must not be negative", param: "max_completion_tokens"}
	}
	if len(f.Stop) > 16 {
		return &apiError{status: 400, msg: "at most 16 stop strings", param: "stop"}
	}
	return nil
}

// apiError is an error with its HTTP status, written in OpenAI's shape.
type apiError struct {
	status     int
	msg        string
	param      string
	code       string
	retryAfter int // seconds; 0 means no Retry-After header
}

func (e *apiError) Error() string { return e.msg }

func (e *apiError) kind() string {
	switch {
	case e.status == 401:
		return "authentication_error"
	case e.status == 404:
		return "not_found_error"
	case e.status == 429 || e.status == 503:
		return "unavailable_error"
	case e.status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

// Usage counts tokens as OpenAI does.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type chatMessageOut struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatChoice struct {
	Index        int            `json:"index"`
	Message      chatMessageOut `json:"message"`
	FinishReason string         `json:"finish_reason"`
}

// ChatResponse is a non-streamed chat completion.
type ChatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   Usage        `json:"usage"`
}

type chatDelta struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content,omitempty"`
}

type chatChunkChoice struct {
	Index        int       `json:"index"`
	Delta        chatDelta `json:"delta"`
	FinishReason *string   `json:"finish_reason"`
}

// ChatChunk is one server-sent event of a streamed chat completion.
type ChatChunk struct {
	ID      string            `json:"id"`
	Object  string            `json:"object"`
	Created int64             `json:"created"`
	Model   string            `json:"model"`
	Choices []chatChunkChoice `json:"choices"`
	Usage   *Usage            `json:"usage,omitempty"`
}

type completionChoice struct {
	Index        int     `json:"index"`
	Text         string  `json:"text"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

// CompletionResponse is a text completion, whole or one streamed chunk.
type CompletionResponse struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *Usage             `json:"usage,omitempty"`
}
