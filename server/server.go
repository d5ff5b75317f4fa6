// Package server is llamago's OpenAI-compatible HTTP server: chat and text
// completions (whole or streamed as server-sent events), tokenize and
// detokenize, health, Prometheus metrics and a small chat page, with many
// requests sharing one model through continuous batching (see scheduler).
package server

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"llamago/chat"
	"llamago/engine"
	"llamago/model"
	"llamago/sample"
)

//go:embed web
var webFiles embed.FS

// Config sets up a Server.
type Config struct {
	Loaded *engine.Loaded
	// ModelName is the id /v1/models reports and requests may name ("" or
	// this name is accepted).
	ModelName string
	// Parallel is the number of sequences decoded together (slots of the
	// KV cache); < 1 means 1.
	Parallel int
	// Ctx is the context of each sequence; < 1 means the model's, at most 4096.
	Ctx int
	// QueueSize bounds the requests waiting for a slot; < 1 means 64.
	QueueSize int
	// APIKey, when set, must come as "Authorization: Bearer KEY".
	APIKey string
	// ChatFallback is the built-in template for files without one.
	ChatFallback string
	// Seed gives requests without one a seed; nil means the clock.
	Seed func() uint64
}

// Server serves one loaded model. Create it with New, serve Handler, and
// stop it with Shutdown.
type Server struct {
	cfg     Config
	sched   *scheduler
	metrics *metrics
	created int64
	mux     *http.ServeMux

	closing  atomic.Bool
	inflight atomic.Int64 // generation requests being served
	nextID   atomic.Int64
	stop     context.CancelFunc
	stopped  chan struct{}
}

// New allocates the KV cache for every slot and starts the scheduler.
func New(cfg Config) (*Server, error) {
	if cfg.Loaded == nil {
		return nil, errors.New("server: no model")
	}
	cfg.Parallel = max(cfg.Parallel, 1)
	if cfg.Ctx < 1 {
		cfg.Ctx = min(cfg.Loaded.Model.Config.NCtxTrain, 4096)
	}
	if cfg.QueueSize < 1 {
		cfg.QueueSize = 64
	}
	if cfg.ChatFallback == "" {
		cfg.ChatFallback = "zephyr"
	}
	if cfg.ModelName == "" {
		cfg.ModelName = "llamago"
	}
	if cfg.Seed == nil {
		cfg.Seed = func() uint64 { return uint64(time.Now().UnixNano()) }
	}
	st, err := cfg.Loaded.Model.NewState(model.StateOptions{
		MaxBatch: max(min(cfg.Ctx, 512), cfg.Parallel), Ctx: cfg.Ctx, Slots: cfg.Parallel,
	})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{cfg: cfg, created: time.Now().Unix(), stopped: make(chan struct{})}
	var sched *scheduler
	s.metrics = newMetrics(
		func() float64 { return float64(len(sched.queue)) },
		func() float64 { return float64(sched.activeSeqs.Load()) },
		func() float64 { return float64(sched.usedPositions.Load()) / float64(cfg.Parallel*cfg.Ctx) },
	)
	sched = newScheduler(cfg.Loaded.Model, st, cfg.Parallel, cfg.QueueSize, s.metrics)
	s.sched = sched
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go func() {
		defer close(s.stopped)
		sched.run(ctx)
	}()
	s.routes()
	return s, nil
}

// Handler serves the API and the chat page.
func (s *Server) Handler() http.Handler { return s.mux }

// Shutdown refuses new requests, lets those running finish until ctx ends,
// then cancels what is left and stops the scheduler.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	// Polling is enough here: shutdown happens once and a few
	// milliseconds of delay do not matter.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var err error
	for s.inflight.Load() > 0 && err == nil {
		select {
		case <-tick.C:
		case <-ctx.Done():
			err = fmt.Errorf("server: shutdown: requests still running were cancelled: %w", ctx.Err())
		}
	}
	s.stop()
	<-s.stopped
	return err
}

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /v1/chat/completions", s.counted("chat", s.authed(s.handleChat)))
	s.mux.HandleFunc("POST /v1/completions", s.counted("completions", s.authed(s.handleCompletion)))
	s.mux.HandleFunc("GET /v1/models", s.counted("models", s.authed(s.handleModels)))
	s.mux.HandleFunc("POST /tokenize", s.counted("tokenize", s.authed(s.handleTokenize)))
	s.mux.HandleFunc("POST /detokenize", s.counted("detokenize", s.authed(s.handleDetokenize)))
	s.mux.HandleFunc("GET /health", s.counted("health", s.handleHealth))
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	web, _ := fs.Sub(webFiles, "web")
	s.mux.Handle("GET /", http.FileServerFS(web))
}

// statusRecorder remembers the status code for the request counter.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Flush passes through so streaming works.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) counted(endpoint string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		h(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		s.metrics.requests.WithLabelValues(endpoint, strconv.Itoa(rec.code)).Inc()
	}
}

func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.APIKey != "" {
			want := "Bearer " + s.cfg.APIKey
			if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) != 1 {
				writeError(w, &apiError{status: http.StatusUnauthorized, msg: "missing or wrong API key (send Authorization: Bearer KEY)", code: "invalid_api_key"})
				return
			}
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{status: http.StatusInternalServerError, msg: err.Error()}
	}
	if ae.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ae.retryAfter))
	}
	body := map[string]any{"error": map[string]any{
		"message": ae.msg, "type": ae.kind(), "param": nullable(ae.param), "code": nullable(ae.code),
	}}
	writeJSON(w, ae.status, body)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if s.closing.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data": []map[string]any{{
			"id": s.cfg.ModelName, "object": "model", "created": s.created, "owned_by": "llamago",
			"meta": map[string]any{"n_ctx": s.cfg.Ctx, "n_vocab": s.cfg.Loaded.Model.Config.NVocab, "parallel": s.cfg.Parallel},
		}},
	})
}

func (s *Server) handleTokenize(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Content      string `json:"content"`
		AddSpecial   bool   `json:"add_special"`
		ParseSpecial bool   `json:"parse_special"`
	}
	if err := decodeJSON(r.Body, &req); err != nil {
		writeError(w, err)
		return
	}
	ids, err := s.cfg.Loaded.Tokenizer.Encode(req.Content, tokenizerOptions(req.AddSpecial, req.ParseSpecial))
	if err != nil {
		writeError(w, &apiError{status: 400, msg: "tokenize: " + err.Error(), param: "content"})
		return
	}
	if ids == nil {
		ids = []int32{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": ids})
}

func (s *Server) handleDetokenize(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Tokens []int32 `json:"tokens"`
	}
	if err := decodeJSON(r.Body, &req); err != nil {
		writeError(w, err)
		return
	}
	n := int32(s.cfg.Loaded.Tokenizer.NumTokens())
	for i, id := range req.Tokens {
		if id < 0 || id >= n {
			writeError(w, &apiError{status: 400, msg: fmt.Sprintf("tokens[%d] = %d is outside the vocabulary of %d", i, id, n), param: "tokens"})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"content": s.cfg.Loaded.Tokenizer.Decode(req.Tokens)})
}

// checkModel accepts no model name, the server's, or the file's path.
func (s *Server) checkModel(name string) error {
	if name == "" || name == s.cfg.ModelName || name == s.cfg.Loaded.Path {
		return nil
	}
	return &apiError{status: http.StatusNotFound, msg: fmt.Sprintf("the model %q does not exist (this server has %q)", name, s.cfg.ModelName), param: "model", code: "model_not_found"}
}

// samplerFor builds a request's sampler from the server defaults
// (llama.cpp's) and the request's fields.
func (s *Server) samplerFor(f *SamplingFields) (*sample.Sampler, error) {
	p := sample.DefaultParams()
	set := func(dst *float32, v *float64) {
		if v != nil {
			*dst = float32(*v)
		}
	}
	set(&p.Temperature, f.Temperature)
	set(&p.TopP, f.TopP)
	set(&p.MinP, f.MinP)
	set(&p.PresencePenalty, f.PresencePenalty)
	set(&p.FrequencyPenalty, f.FrequencyPenalty)
	set(&p.RepeatPenalty, f.RepeatPenalty)
	if f.TopK != nil {
		p.TopK = *f.TopK
	}
	if f.Seed != nil && *f.Seed >= 0 {
		p.Seed = uint64(*f.Seed)
	} else {
		p.Seed = s.cfg.Seed()
	}
	smp, err := sample.New(p, s.cfg.Loaded.Model.Config.NVocab)
	if err != nil {
		return nil, &apiError{status: 400, msg: err.Error()}
	}
	return smp, nil
}

// chatPrompt tokenizes a conversation with its contents kept as text.
func (s *Server) chatPrompt(msgs []Message) ([]int32, error) {
	cm := make([]chat.Message, len(msgs))
	for i, m := range msgs {
		cm[i] = chat.Message{Role: m.Role, Content: string(m.Content)}
	}
	ids, _, err := s.cfg.Loaded.ChatPrompt(cm, s.cfg.ChatFallback)
	if err != nil {
		var re *chat.RaiseError
		if errors.As(err, &re) {
			return nil, &apiError{status: 400, msg: err.Error(), param: "messages"}
		}
		return nil, &apiError{status: 500, msg: err.Error()}
	}
	return ids, nil
}
