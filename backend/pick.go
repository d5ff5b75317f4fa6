package backend

import "math"

// Pick is greedy sampling's finding on one row of logits, without
// penalties: everything the sampler needs to return its token or its error
// (sample.PickToken). A backend that holds the logits can compute it there
// and copy back these few bytes instead of the row (ArgMaxer); FindPick is
// the rule.
type Pick struct {
	// ID is the lowest index of the largest logit that is neither NaN nor
	// +Inf; -1 when no such logit is above -Inf.
	ID int32
	// Bad is the lowest index of a NaN or +Inf logit, -1 when there is
	// none; BadLogit is that logit (0 when there is none).
	Bad      int32
	BadLogit float32
}

// FindPick scans logits as greedy sampling does: the first NaN or +Inf is
// an error, ties go to the lowest index (like llama.cpp's greedy sampler),
// -Inf (a masked token) never wins.
func FindPick(logits []float32) Pick {
	posInf := float32(math.Inf(1))
	b := Pick{ID: -1, Bad: -1}
	best := float32(math.Inf(-1))
	for i, l := range logits {
		if !(l < posInf) { // NaN or +Inf
			if b.Bad < 0 {
				b.Bad, b.BadLogit = int32(i), l
			}
			continue
		}
		if l > best { // strictly greater: the first of equal logits stays
			b.ID, best = int32(i), l
		}
	}
	return b
}
