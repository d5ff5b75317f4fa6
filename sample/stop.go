package sample

import "strings"

// StopChecker watches generated text for stop strings. Fed the text of each
// new token, it returns the part that is safe to show: text that cannot be
// the start of a stop string is released at once, a possible start is held
// back until the following pieces settle it, and a stop string, once
// complete, is never shown, nor anything after it.
//
// It works on bytes: a piece that ends inside a UTF-8 sequence is passed on
// as is, so callers that stream to a terminal should feed whole characters.
type StopChecker struct {
	stops   []string
	held    string // released text that may begin a stop string
	stopped bool
}

// NewStopChecker returns a StopChecker for stops. Empty strings are ignored.
func NewStopChecker(stops []string) *StopChecker {
	c := &StopChecker{}
	for _, s := range stops {
		if s != "" {
			c.stops = append(c.stops, s)
		}
	}
	return c
}

// Push adds piece to the text and returns what can be shown now. stopped is
// true once a stop string has appeared; emit then holds the text before it,
// and later calls return nothing.
func (c *StopChecker) Push(piece string) (emit string, stopped bool) {
	if c.stopped {
		return "", true
	}
	text := c.held + piece
	c.held = ""
	if at := c.firstStop(text); at >= 0 {
		c.stopped = true
		return text[:at], true
	}
	keep := c.partialStop(text)
	c.held = text[len(text)-keep:]
	return text[:len(text)-keep], false
}

// Flush returns the text held back, for when generation ends without a stop
// string (at end of sequence or the length limit).
func (c *StopChecker) Flush() string {
	held := c.held
	c.held = ""
	return held
}

// Stopped reports whether a stop string has appeared.
func (c *StopChecker) Stopped() bool { return c.stopped }

// firstStop returns where the earliest stop string in text starts, or -1.
func (c *StopChecker) firstStop(text string) int {
	first := -1
	for _, s := range c.stops {
		if i := strings.Index(text, s); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	return first
}

// partialStop returns the length of the longest end of text that is the
// beginning of a stop string (and not a whole one, which firstStop found).
func (c *StopChecker) partialStop(text string) int {
	longest := 0
	for _, s := range c.stops {
		for n := min(len(s)-1, len(text)); n > longest; n-- {
			if strings.HasSuffix(text, s[:n]) {
				longest = n
				break
			}
		}
	}
	return longest
}
