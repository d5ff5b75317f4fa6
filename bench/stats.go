package bench

import "math"

// Summary is the mean and spread of repeated measurements.
type Summary struct {
	Mean   float64
	Stddev float64 // sample standard deviation (n−1), 0 for one sample
	N      int
}

// Summarize returns the mean and the sample standard deviation of xs,
// as llama-bench reports them.
func Summarize(xs []float64) Summary {
	n := len(xs)
	if n == 0 {
		return Summary{}
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	mean := sum / float64(n)
	if n == 1 {
		return Summary{Mean: mean, N: 1}
	}
	var sq float64
	for _, x := range xs {
		sq += (x - mean) * (x - mean)
	}
	return Summary{Mean: mean, Stddev: math.Sqrt(sq / float64(n-1)), N: n}
}
