package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"llamago/internal/testenv"
)

// TestServeMatchesRun starts `llamago serve` on a free port, asks it for a
// greedy chat answer, compares it with `llamago run --chat --temp 0`, and
// stops it as SIGTERM would (the context ends): it must exit 0.
func TestServeMatchesRun(t *testing.T) {
	m := testenv.Path(t, testenv.Stories260KGGUF)
	const prompt = "Lily and Tom went to the park"
	out, errs, code := runCLI(t, "run", "-m", m, "--chat", "--temp", "0", "-n", "40", "-p", prompt, "--json")
	if code != 0 {
		t.Fatalf("run: %d %s", code, errs)
	}
	var want runResult
	if err := json.Unmarshal([]byte(out), &want); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	exit := make(chan int, 1)
	go func() {
		exit <- runServe(ctx, []string{"-m", m, "--port", "0", "--parallel", "2"}, io.Discard, pw)
		pw.Close()
	}()
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`on (http://\S+)`)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	var url string
	select {
	case url = <-addr:
	case code := <-exit:
		t.Fatalf("serve exited with %d", code)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}
	body := `{"messages":[{"role":"user","content":"` + prompt + `"}],"temperature":0,"max_tokens":40}`
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Choices []struct{ Message struct{ Content string } }
		Usage   struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || len(got.Choices) != 1 {
		t.Fatalf("%v %+v", err, got)
	}
	if got.Choices[0].Message.Content != want.Text || got.Usage.PromptTokens != len(want.PromptIDs) || got.Usage.CompletionTokens != len(want.GeneratedIDs) {
		t.Errorf("serve answered %q (%+v), run %q (%d+%d tokens)", got.Choices[0].Message.Content, got.Usage, want.Text, len(want.PromptIDs), len(want.GeneratedIDs))
	}
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("serve exited with %d after shutdown", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
}
