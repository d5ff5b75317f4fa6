package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"llamago/internal/testenv"
)

// cdp is a DevTools protocol client over chromium's --remote-debugging-pipe
// (fd 3 carries commands in, fd 4 replies out, each message ending in NUL),
// which needs no websocket.
type cdp struct {
	w       *os.File
	mu      sync.Mutex
	next    int
	replies map[int]chan json.RawMessage
	closed  chan struct{} // closed when chromium's output ends
}

func (c *cdp) readLoop(r *os.File) {
	defer close(c.closed)
	br := bufio.NewReader(r)
	for {
		msg, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		var m struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if json.Unmarshal(msg[:len(msg)-1], &m) != nil || m.ID == 0 {
			continue // events
		}
		c.mu.Lock()
		ch := c.replies[m.ID]
		delete(c.replies, m.ID)
		c.mu.Unlock()
		if ch != nil {
			if m.Error != nil {
				ch <- json.RawMessage(fmt.Sprintf(`{"cdpError":%s}`, m.Error))
			} else {
				ch <- m.Result
			}
		}
	}
}

func (c *cdp) call(session, method string, params any) (json.RawMessage, error) {
	c.mu.Lock()
	c.next++
	id := c.next
	ch := make(chan json.RawMessage, 1)
	c.replies[id] = ch
	c.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	b, _ := json.Marshal(msg)
	if _, err := c.w.Write(append(b, 0)); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		if strings.HasPrefix(string(r), `{"cdpError"`) {
			return nil, fmt.Errorf("%s: %s", method, r)
		}
		return r, nil
	case <-c.closed:
		return nil, fmt.Errorf("%s: chromium went away", method)
	case <-time.After(20 * time.Second):
		return nil, fmt.Errorf("%s: no reply", method)
	}
}

// eval runs a JavaScript expression in the page and returns its value.
func (c *cdp) eval(session, expr string) (any, error) {
	r, err := c.call(session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	if err != nil {
		return nil, err
	}
	var v struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
	}
	err = json.Unmarshal(r, &v)
	return v.Result.Value, err
}

// TestChatPageInChromium types a message into the chat page in headless
// Chromium and waits for the streamed answer, which must be the greedy one.
func TestChatPageInChromium(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Missing(t, "chromium (apt-get install -y chromium): %v", err)
	}
	l := loadModel(t)
	_, hs := startServer(t, l, Config{Parallel: 2})
	const prompt = "Tell me a story"
	want := reference(t, l, prompt, true, 256).Text

	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: chromium's helper processes may still write there
	// for a moment after the browser exits, which would fail the test.
	profile, err := os.MkdirTemp("", "llamago-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir="+profile, "--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{cmdR, outW}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmdR.Close()
	outW.Close()
	c := &cdp{w: cmdW, replies: map[int]chan json.RawMessage{}, closed: make(chan struct{})}
	go c.readLoop(outR)
	t.Cleanup(func() {
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		_, _ = c.call("", "Browser.close", nil)
		select {
		case <-waited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-waited
		}
		cmdW.Close()
		outR.Close()
		for range 20 {
			if os.RemoveAll(profile) == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	r, err := c.call("", "Target.createTarget", map[string]any{"url": hs.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	var target struct{ TargetID string }
	if err := json.Unmarshal(r, &target); err != nil {
		t.Fatal(err)
	}
	r, err = c.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true})
	if err != nil {
		t.Fatal(err)
	}
	var att struct{ SessionID string }
	if err := json.Unmarshal(r, &att); err != nil {
		t.Fatal(err)
	}
	poll := func(what, expr string) any {
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			v, err := c.eval(att.SessionID, expr)
			if err != nil {
				t.Fatal(err)
			}
			if v != nil && v != false {
				return v
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("timed out waiting for %s", what)
		return nil
	}
	poll("the page", `document.readyState === "complete" && !!document.getElementById("msg")`)
	if _, err := c.eval(att.SessionID, fmt.Sprintf(`document.getElementById("temp").value = "0";
		document.getElementById("msg").value = %q;
		document.getElementById("send").click(); true`, prompt)); err != nil {
		t.Fatal(err)
	}
	got := poll("the answer", `(() => { const a = document.querySelector(".assistant");
		return a && a.dataset.done === "true" ? a.textContent : null })()`)
	if got != want {
		t.Errorf("the page shows %q, want %q", got, want)
	}
	if user, _ := c.eval(att.SessionID, `document.querySelector(".user").textContent`); user != prompt {
		t.Errorf("the page shows the user's message as %q", user)
	}
}
