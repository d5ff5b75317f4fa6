package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"llamago/backend"
	"llamago/sample"
	"llamago/tokenizer"
)

// StopReason says why generation ended.
type StopReason string

// The stop reasons.
const (
	StopEOS     StopReason = "eos"     // the model produced an end-of-generation token
	StopString  StopReason = "stop"    // a stop string appeared
	StopLength  StopReason = "length"  // the token limit was reached
	StopContext StopReason = "context" // the context is full
)

// GenerateOptions configure Generate.
type GenerateOptions struct {
	// MaxTokens limits the generated tokens; < 0 means until the context is full.
	MaxTokens int
	Sampler   *sample.Sampler
	Tokenizer *tokenizer.Tokenizer
	// Stop strings end generation; they are not part of the text.
	Stop []string
	// OnText receives the text as it is generated, in complete UTF-8
	// characters; an error from it ends generation with that error.
	OnText func(string) error
}

// Result is what Generate produced.
type Result struct {
	PromptIDs    []int32
	GeneratedIDs []int32
	Text         string
	StopReason   StopReason
	Prefill      time.Duration
	Decode       time.Duration
}

// PrefillTokensPerSecond is the prompt's tokens over its evaluation time.
func (r *Result) PrefillTokensPerSecond() float64 {
	return perSecond(len(r.PromptIDs), r.Prefill)
}

// DecodeTokensPerSecond counts the tokens evaluated one at a time after
// the prompt (the first generated token comes from the prompt's logits).
func (r *Result) DecodeTokensPerSecond() float64 {
	return perSecond(max(len(r.GeneratedIDs)-1, 0), r.Decode)
}

func perSecond(n int, d time.Duration) float64 {
	if n == 0 || d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Generate evaluates prompt after what the session holds, then samples
// tokens until a stop condition. Text goes to opts.OnText as it comes.
func (s *Session) Generate(ctx context.Context, prompt []int32, opts GenerateOptions) (*Result, error) {
	if len(prompt) == 0 {
		return nil, errors.New("engine: empty prompt: nothing to continue from")
	}
	if opts.Sampler == nil || opts.Tokenizer == nil {
		return nil, errors.New("engine: Generate needs a sampler and a tokenizer")
	}
	if s.Len()+len(prompt) > s.Ctx() {
		return nil, fmt.Errorf("engine: the prompt has %d tokens but the context holds %d (%d already used): %w", len(prompt), s.Ctx(), s.Len(), ErrContextFull)
	}
	res := &Result{PromptIDs: prompt}
	if opts.MaxTokens > 0 {
		res.GeneratedIDs = make([]int32, 0, opts.MaxTokens)
	}
	for _, id := range prompt {
		opts.Sampler.Accept(id)
	}
	dec := opts.Tokenizer.NewStreamDecoder(tokenizer.DecodeOptions{})
	// Feed the prompt so that the first generated token keeps its space.
	for _, id := range prompt {
		dec.Add(id)
	}
	stops := sample.NewStopChecker(opts.Stop)
	var text []byte
	emit := func(piece string) error {
		out, stopped := stops.Push(piece)
		text = append(text, out...)
		if out != "" && opts.OnText != nil {
			if err := opts.OnText(out); err != nil {
				return err
			}
		}
		if stopped {
			res.StopReason = StopString
		}
		return nil
	}

	// Greedy sampling without penalties needs only the best logit's
	// index: EvalBest lets a backend that can find it where the logits
	// are (backend.ArgMaxer, the GPU) copy back that instead of the
	// logits. Probes read the logits anyway.
	greedy := opts.Sampler.Greedy() && s.Probes == nil
	var (
		logits []float32
		best   backend.Pick
	)
	eval := func(ids []int32) (err error) {
		if greedy {
			best, err = s.EvalBest(ctx, ids)
		} else {
			logits, err = s.Eval(ctx, ids)
		}
		return err
	}
	start := time.Now()
	if err := eval(prompt); err != nil {
		return nil, err
	}
	res.Prefill = time.Since(start)
	start = time.Now()
	for {
		if opts.MaxTokens >= 0 && len(res.GeneratedIDs) >= opts.MaxTokens {
			res.StopReason = StopLength
			break
		}
		var id int32
		var err error
		if greedy {
			id, err = opts.Sampler.SampleBest(best)
		} else {
			id, err = opts.Sampler.Sample(logits)
		}
		if err != nil {
			return res, fmt.Errorf("engine: sampling at position %d: %w", s.Len(), err)
		}
		opts.Sampler.Accept(id)
		if opts.Tokenizer.IsEOG(id) {
			res.StopReason = StopEOS
			break
		}
		res.GeneratedIDs = append(res.GeneratedIDs, id)
		if err := emit(dec.Add(id)); err != nil {
			return res, err
		}
		if res.StopReason != "" {
			break
		}
		if s.Len() >= s.Ctx() {
			res.StopReason = StopContext
			break
		}
		if opts.MaxTokens >= 0 && len(res.GeneratedIDs) >= opts.MaxTokens {
			res.StopReason = StopLength
			break
		}
		if err := eval([]int32{id}); err != nil {
			return res, err
		}
	}
	res.Decode = time.Since(start)
	if res.StopReason != StopString {
		if err := emit(dec.Flush()); err != nil {
			return res, err
		}
		if tail := stops.Flush(); tail != "" {
			text = append(text, tail...)
			if opts.OnText != nil {
				if err := opts.OnText(tail); err != nil {
					return res, err
				}
			}
		}
	}
	res.Text = string(text)
	return res, nil
}
