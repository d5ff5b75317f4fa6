package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"llamago/chat"
	"llamago/engine"
	"llamago/internal/testenv"
	"llamago/model"
	"llamago/sample"
)

const testCtx = 512

func loadModel(t testing.TB) *engine.Loaded {
	t.Helper()
	l, err := engine.Load(testenv.Path(t, testenv.Stories260KGGUF), engine.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func startServer(t testing.TB, l *engine.Loaded, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	cfg.Loaded = l
	if cfg.Ctx == 0 {
		cfg.Ctx = testCtx
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		hs.Close()
	})
	return s, hs
}

// reference is what `llamago run --temp 0 -n maxTokens` generates: a fresh
// one-slot state, engine.ChatPrompt (chat) or TextPrompt, Session.Generate.
func reference(t testing.TB, l *engine.Loaded, prompt string, isChat bool, maxTokens int) *engine.Result {
	t.Helper()
	st, err := l.Model.NewState(model.StateOptions{MaxBatch: testCtx, Ctx: testCtx})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int32
	if isChat {
		ids, _, err = l.ChatPrompt([]chat.Message{{Role: "user", Content: prompt}}, "zephyr")
	} else {
		ids, err = l.TextPrompt(prompt)
	}
	if err != nil {
		t.Fatal(err)
	}
	p := sample.DefaultParams()
	p.Temperature = 0
	smp, err := sample.New(p, l.Model.Config.NVocab)
	if err != nil {
		t.Fatal(err)
	}
	res, err := engine.NewSession(l.Model, st, 0).Generate(context.Background(), ids, engine.GenerateOptions{MaxTokens: maxTokens, Sampler: smp, Tokenizer: l.Tokenizer})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func post(t testing.TB, url, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// streamed is a streamed answer put back together.
type streamed struct {
	text, finish string
	usage        *Usage
	done         bool
	chunks       int
}

// readStream parses server-sent events as an OpenAI client does.
func readStream(r io.Reader, isChat bool) (streamed, error) {
	var out streamed
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			return out, fmt.Errorf("line %q is not a data event", line)
		}
		if out.done {
			return out, fmt.Errorf("event after [DONE]: %q", line)
		}
		if data == "[DONE]" {
			out.done = true
			continue
		}
		out.chunks++
		var c struct {
			Object  string `json:"object"`
			Choices []struct {
				Text         string `json:"text"`
				Delta        struct{ Content string }
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage *Usage          `json:"usage"`
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			return out, err
		}
		if c.Error != nil {
			return out, fmt.Errorf("error event: %s", c.Error)
		}
		wantObj := map[bool]string{true: "chat.completion.chunk", false: "text_completion"}[isChat]
		if c.Object != wantObj {
			return out, fmt.Errorf("object %q, want %q", c.Object, wantObj)
		}
		for _, ch := range c.Choices {
			out.text += ch.Text + ch.Delta.Content
			if ch.FinishReason != nil {
				out.finish = *ch.FinishReason
			}
		}
		if c.Usage != nil {
			out.usage = c.Usage
		}
	}
	return out, sc.Err()
}

func chatBody(prompt string, maxTokens int, stream bool) string {
	b, _ := json.Marshal(map[string]any{
		"model": "stories260K", "messages": []map[string]string{{"role": "user", "content": prompt}},
		"temperature": 0, "max_tokens": maxTokens, "stream": stream, "stream_options": map[string]bool{"include_usage": stream},
	})
	return string(b)
}

var testPrompts = []string{"Tell me a story", "Lily and Tom went to the park", "Once upon a time", "What is a cat?", "Sing", "The big red ball", "Hi", "A dog"}

// TestGreedyMatchesRun checks that both endpoints, whole and streamed,
// answer greedy requests exactly as `llamago run --temp 0` does.
func TestGreedyMatchesRun(t *testing.T) {
	l := loadModel(t)
	_, hs := startServer(t, l, Config{Parallel: 2, ModelName: "stories260K"})
	for _, prompt := range testPrompts[:4] {
		for _, isChat := range []bool{true, false} {
			const n = 48
			want := reference(t, l, prompt, isChat, n)
			wantFinish := finishReason(want.StopReason)
			path, body := "/v1/chat/completions", chatBody(prompt, n, false)
			if !isChat {
				path = "/v1/completions"
				b, _ := json.Marshal(map[string]any{"prompt": prompt, "temperature": 0, "max_tokens": n})
				body = string(b)
			}
			resp, b := post(t, hs.URL+path, body)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
			}
			var whole struct {
				Choices []struct {
					Text         string
					Message      struct{ Content string }
					FinishReason string `json:"finish_reason"`
				}
				Usage Usage
			}
			if err := json.Unmarshal(b, &whole); err != nil {
				t.Fatal(err)
			}
			got := whole.Choices[0].Text + whole.Choices[0].Message.Content
			if got != want.Text || whole.Choices[0].FinishReason != wantFinish {
				t.Errorf("%s %q: got %q (%s), run gives %q (%s)", path, prompt, got, whole.Choices[0].FinishReason, want.Text, wantFinish)
			}
			if whole.Usage.PromptTokens != len(want.PromptIDs) || whole.Usage.CompletionTokens != len(want.GeneratedIDs) {
				t.Errorf("%s %q: usage %+v, want %d prompt and %d generated", path, prompt, whole.Usage, len(want.PromptIDs), len(want.GeneratedIDs))
			}
			// Streamed.
			var sb map[string]any
			_ = json.Unmarshal([]byte(body), &sb)
			sb["stream"], sb["stream_options"] = true, map[string]bool{"include_usage": true}
			bb, _ := json.Marshal(sb)
			sresp, err := http.Post(hs.URL+path, "application/json", strings.NewReader(string(bb)))
			if err != nil {
				t.Fatal(err)
			}
			if ct := sresp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Errorf("stream Content-Type %q", ct)
			}
			st, err := readStream(sresp.Body, isChat)
			sresp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !st.done || st.text != want.Text || st.finish != wantFinish || st.usage == nil || st.usage.CompletionTokens != len(want.GeneratedIDs) {
				t.Errorf("%s %q streamed: %+v, want text %q finish %s", path, prompt, st, want.Text, wantFinish)
			}
		}
	}
}

// TestLoad runs many streaming clients at once against --parallel 1 and 8:
// every answer must equal its single-request greedy answer (batched rows
// are computed independently), no goroutine may outlive the run, and
// batching must raise the total throughput.
func TestLoad(t *testing.T) {
	l := loadModel(t)
	const clients, n = 32, 64
	want := make(map[string]string)
	for _, p := range testPrompts {
		want[p] = reference(t, l, p, true, n).Text
	}
	tps := map[int]float64{}
	rowsPerPass := map[int]float64{}
	for _, parallel := range []int{1, 8} {
		before := runtime.NumGoroutine()
		s, hs := startServer(t, l, Config{Parallel: parallel, ModelName: "stories260K"})
		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		tokens := 0
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				prompt := testPrompts[c%len(testPrompts)]
				resp, err := http.Post(hs.URL+"/v1/chat/completions", "application/json", strings.NewReader(chatBody(prompt, n, true)))
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				st, err := readStream(resp.Body, true)
				if err != nil || !st.done || st.text != want[prompt] {
					t.Errorf("parallel %d client %d: %+v, %v; want %q", parallel, c, st, err, want[prompt])
					return
				}
				mu.Lock()
				tokens += st.usage.CompletionTokens
				mu.Unlock()
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		tps[parallel] = float64(tokens) / elapsed.Seconds()
		t.Logf("parallel %d: %d streaming clients in %v: %.1f requests/s, %.0f generated tokens/s", parallel, clients, elapsed.Round(time.Millisecond), clients/elapsed.Seconds(), tps[parallel])
		rowsPerPass[parallel] = meanBatchRows(t, hs.URL)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > 512<<20 {
			t.Errorf("heap of %d MiB after the run", ms.HeapAlloc>>20)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		cancel()
		hs.CloseClientConnections()
		hs.Close()
		http.DefaultClient.CloseIdleConnections()
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if g := runtime.NumGoroutine(); g > before {
			t.Errorf("parallel %d: %d goroutines after the run, %d before", parallel, g, before)
		}
	}
	// Speed is measured, not asserted: the ratio is logged (and recorded in
	// docs/PERFORMANCE.md). What is asserted is that batching happens:
	// with 8 slots a forward pass carries several sequences.
	t.Logf("throughput ratio parallel 8 / parallel 1: %.2f; rows per forward pass: %.2f and %.2f", tps[8]/tps[1], rowsPerPass[1], rowsPerPass[8])
	if rowsPerPass[8] < 3*rowsPerPass[1] {
		t.Errorf("parallel 8 ran %.2f rows per forward pass, parallel 1 %.2f: sequences are not batched", rowsPerPass[8], rowsPerPass[1])
	}
}

// meanBatchRows reads the server's llamago_batch_rows histogram from
// /metrics and returns its mean.
func meanBatchRows(t *testing.T, url string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var sum, count float64
	for _, line := range strings.Split(string(body), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		switch f[0] {
		case "llamago_batch_rows_sum":
			sum, _ = strconv.ParseFloat(f[1], 64)
		case "llamago_batch_rows_count":
			count, _ = strconv.ParseFloat(f[1], 64)
		}
	}
	if count == 0 {
		t.Fatalf("no llamago_batch_rows in /metrics:\n%s", body)
	}
	return sum / count
}
