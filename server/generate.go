package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"llamago/engine"
	"llamago/sample"
	"llamago/tokenizer"
)

func tokenizerOptions(addSpecial, parseSpecial bool) tokenizer.EncodeOptions {
	return tokenizer.EncodeOptions{AddSpecial: addSpecial, ParseSpecial: parseSpecial}
}

// finishReason maps a stop reason to OpenAI's finish_reason.
func finishReason(r engine.StopReason) string {
	switch r {
	case engine.StopLength, engine.StopContext:
		return "length"
	}
	return "stop"
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	req, err := DecodeChatRequest(r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.checkModel(req.Model); err != nil {
		writeError(w, err)
		return
	}
	ids, err := s.chatPrompt(req.Messages)
	if err != nil {
		writeError(w, err)
		return
	}
	s.serveGeneration(w, r, &req.SamplingFields, ids, true)
}

func (s *Server) handleCompletion(w http.ResponseWriter, r *http.Request) {
	req, err := DecodeCompletionRequest(r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.checkModel(req.Model); err != nil {
		writeError(w, err)
		return
	}
	ids, err := s.cfg.Loaded.TextPrompt(req.Prompt[0])
	if err != nil {
		writeError(w, &apiError{status: 400, msg: "tokenize prompt: " + err.Error(), param: "prompt"})
		return
	}
	s.serveGeneration(w, r, &req.SamplingFields, ids, false)
}

// serveGeneration queues the request, then writes its answer whole or as
// server-sent events.
func (s *Server) serveGeneration(w http.ResponseWriter, r *http.Request, f *SamplingFields, ids []int32, isChat bool) {
	if len(ids) == 0 {
		writeError(w, &apiError{status: 400, msg: "the prompt is empty and the vocabulary adds no BOS: nothing to continue from", param: "prompt"})
		return
	}
	if len(ids) > s.cfg.Ctx {
		writeError(w, &apiError{status: 400, code: "context_length_exceeded", param: "messages",
			msg: fmt.Sprintf("the prompt has %d tokens but the context holds %d", len(ids), s.cfg.Ctx)})
		return
	}
	smp, err := s.samplerFor(f)
	if err != nil {
		writeError(w, err)
		return
	}
	maxTokens := -1
	if f.MaxTokens != nil {
		maxTokens = *f.MaxTokens
	} else if f.MaxCompletionTokens != nil {
		maxTokens = *f.MaxCompletionTokens
	}
	j := newJob(r.Context(), ids, smp, maxTokens, f.Stop, s.cfg.Loaded.Tokenizer)
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	if s.closing.Load() {
		writeError(w, &apiError{status: http.StatusServiceUnavailable, msg: "the server is shutting down", retryAfter: 5})
		return
	}
	if !s.sched.submit(j) {
		writeError(w, &apiError{status: http.StatusServiceUnavailable, msg: fmt.Sprintf("the queue of %d requests is full; retry later", s.cfg.QueueSize), retryAfter: 1})
		return
	}
	s.metrics.promptTokens.Add(float64(len(ids)))
	id := fmt.Sprintf("%s-%d-%d", map[bool]string{true: "chatcmpl", false: "cmpl"}[isChat], s.created, s.nextID.Add(1))
	g := generation{s: s, w: w, id: id, created: time.Now().Unix(), isChat: isChat, promptTokens: len(ids)}
	if f.Stream {
		g.stream(r.Context(), j, f.StreamOptions != nil && f.StreamOptions.IncludeUsage)
	} else {
		g.whole(r.Context(), j)
	}
}

func newJob(ctx context.Context, prompt []int32, smp *sample.Sampler, maxTokens int, stops []string, tok *tokenizer.Tokenizer) *job {
	j := &job{
		ctx: ctx, prompt: prompt, sampler: smp, maxTokens: maxTokens,
		stops: sample.NewStopChecker(stops), dec: tok.NewStreamDecoder(tokenizer.DecodeOptions{}), tok: tok,
		notify: make(chan struct{}, 1),
	}
	// As engine.Session.Generate: the penalties see the prompt, and the
	// decoder knows it so the first generated token keeps its space.
	for _, id := range prompt {
		smp.Accept(id)
		j.dec.Add(id)
	}
	return j
}

// generation writes one request's answer.
type generation struct {
	s            *Server
	w            http.ResponseWriter
	id           string
	created      int64
	isChat       bool
	promptTokens int
}

func (g *generation) usage(j *job) Usage {
	n := len(j.generatedSnapshot())
	return Usage{PromptTokens: g.promptTokens, CompletionTokens: n, TotalTokens: g.promptTokens + n}
}

// generatedSnapshot is safe once the job is done: the scheduler no longer
// touches it.
func (j *job) generatedSnapshot() []int32 { return j.generated }

// wait blocks until j has new text or is done, or ctx ends.
func wait(ctx context.Context, j *job) bool {
	select {
	case <-j.notify:
		return true
	case <-ctx.Done():
		return false
	}
}

func (g *generation) whole(ctx context.Context, j *job) {
	var text []byte
	for wait(ctx, j) {
		piece, done, reason, err := j.take()
		text = append(text, piece...)
		if !done {
			continue
		}
		if err != nil {
			writeError(g.w, generationError(err))
			return
		}
		fr := finishReason(reason)
		u := g.usage(j)
		if g.isChat {
			writeJSON(g.w, http.StatusOK, ChatResponse{
				ID: g.id, Object: "chat.completion", Created: g.created, Model: g.s.cfg.ModelName,
				Choices: []chatChoice{{Message: chatMessageOut{Role: "assistant", Content: string(text)}, FinishReason: fr}},
				Usage:   u,
			})
		} else {
			writeJSON(g.w, http.StatusOK, CompletionResponse{
				ID: g.id, Object: "text_completion", Created: g.created, Model: g.s.cfg.ModelName,
				Choices: []completionChoice{{Text: string(text), FinishReason: &fr}},
				Usage:   &u,
			})
		}
		return
	}
}

func generationError(err error) error {
	if err == errShuttingDown {
		return &apiError{status: http.StatusServiceUnavailable, msg: err.Error(), retryAfter: 5}
	}
	return &apiError{status: http.StatusInternalServerError, msg: err.Error()}
}

// stream writes server-sent events in OpenAI's chunk format.
func (g *generation) stream(ctx context.Context, j *job, includeUsage bool) {
	h := g.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	g.w.WriteHeader(http.StatusOK)
	flusher, _ := g.w.(http.Flusher)
	send := func(v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(g.w, "data: %s\n\n", b); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	if g.isChat && !send(g.chatChunk(chatDelta{Role: "assistant"}, nil)) {
		return
	}
	for wait(ctx, j) {
		piece, done, reason, err := j.take()
		if piece != "" {
			var ok bool
			if g.isChat {
				ok = send(g.chatChunk(chatDelta{Content: piece}, nil))
			} else {
				ok = send(g.textChunk(piece, nil))
			}
			if !ok {
				return
			}
		}
		if !done {
			continue
		}
		if err != nil {
			// Headers are gone: report the error as an event, as OpenAI does.
			ae, _ := generationError(err).(*apiError)
			send(map[string]any{"error": map[string]any{"message": ae.msg, "type": ae.kind(), "code": strconv.Itoa(ae.status)}})
		} else {
			fr := finishReason(reason)
			if g.isChat {
				send(g.chatChunk(chatDelta{}, &fr))
			} else {
				send(g.textChunk("", &fr))
			}
			if includeUsage {
				u := g.usage(j)
				if g.isChat {
					send(ChatChunk{ID: g.id, Object: "chat.completion.chunk", Created: g.created, Model: g.s.cfg.ModelName, Choices: []chatChunkChoice{}, Usage: &u})
				} else {
					send(CompletionResponse{ID: g.id, Object: "text_completion", Created: g.created, Model: g.s.cfg.ModelName, Choices: []completionChoice{}, Usage: &u})
				}
			}
		}
		fmt.Fprint(g.w, "data: [DONE]\n\n")
		if flusher != nil {
			flusher.Flush()
		}
		return
	}
}

func (g *generation) chatChunk(d chatDelta, finish *string) ChatChunk {
	return ChatChunk{ID: g.id, Object: "chat.completion.chunk", Created: g.created, Model: g.s.cfg.ModelName,
		Choices: []chatChunkChoice{{Delta: d, FinishReason: finish}}}
}

func (g *generation) textChunk(text string, finish *string) CompletionResponse {
	return CompletionResponse{ID: g.id, Object: "text_completion", Created: g.created, Model: g.s.cfg.ModelName,
		Choices: []completionChoice{{Text: text, FinishReason: finish}}}
}
