package llamacpp

import (
	"strings"
	"sync"
)

// logKeep is how many log lines are kept: enough to explain a failed load.
const logKeep = 256

// logBuffer keeps the latest lines llama.cpp logged. ggml hands over text
// in fragments (a level of "continue", lines without their newline), so
// fragments are joined until a newline ends the line.
type logBuffer struct {
	mu      sync.Mutex
	partial strings.Builder
	lines   []string // ring of at most logKeep lines
	next    int      // index of the oldest line once the ring is full
}

func (b *logBuffer) write(text string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		i := strings.IndexByte(text, '\n')
		if i < 0 {
			b.partial.WriteString(text)
			return
		}
		b.partial.WriteString(text[:i])
		b.push(b.partial.String())
		b.partial.Reset()
		text = text[i+1:]
	}
}

func (b *logBuffer) push(line string) {
	if len(b.lines) < logKeep {
		b.lines = append(b.lines, line)
		return
	}
	b.lines[b.next] = line
	b.next = (b.next + 1) % logKeep
}

// last returns up to n of the latest lines, oldest first, including an
// unfinished line.
func (b *logBuffer) last(n int) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	all := make([]string, 0, len(b.lines)+1)
	all = append(all, b.lines[b.next:]...)
	all = append(all, b.lines[:b.next]...)
	if b.partial.Len() > 0 {
		all = append(all, b.partial.String())
	}
	if n < len(all) {
		all = all[len(all)-n:]
	}
	return all
}

// tail formats the last n lines for an error message.
func (b *logBuffer) tail(n int) string {
	lines := b.last(n)
	if len(lines) == 0 {
		return "(llama.cpp logged nothing)"
	}
	return "llama.cpp log: " + strings.Join(lines, " | ")
}

// onLog is the C log callback (ggml_log_callback). It may run on any
// thread; it only appends to the buffer.
func (l *Lib) onLog(level uintptr, text *byte, userData uintptr) {
	l.log.write(cString(text))
}
