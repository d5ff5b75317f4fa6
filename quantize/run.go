package quantize

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"llamago/gguf"
	"llamago/tensor"
)

// Options tunes Run. The zero value uses every CPU and refuses quantized
// input.
type Options struct {
	// Threads is the number of goroutines converting rows; <= 0 means
	// runtime.GOMAXPROCS(0).
	Threads int
	// AllowRequantize lets quantized input tensors be converted to
	// another type (through float32), which compounds the errors of both
	// quantizations. Tensors already of their target type are copied
	// either way.
	AllowRequantize bool
	// Progress, when set, is called after each tensor is written, with
	// its index in the output, the tensor count, and its plan.
	Progress func(i, n int, p TensorPlan)
}

// Keys Run sets or drops rather than copies.
const (
	keyQuantVersion = "general.quantization_version"
	keyFileType     = "general.file_type"
)

// quantVersion is ggml's GGML_QNT_VERSION, the block format generation.
const quantVersion = 2

// slabElements bounds the float32 elements converted at once (64 MiB of
// float32 buffers), so that memory stays flat whatever the model's size.
const slabElements = 16 << 20

// Run quantizes the GGUF model at in to target and writes it to out (via a
// temporary file renamed into place, so a failure leaves no partial out).
// Metadata is copied, with general.quantization_version and
// general.file_type set; tensors are converted one at a time, streamed
// from the memory-mapped input to the output.
func Run(in, out string, target Target, opts Options) error {
	return run(in, out, target, opts, slabElements)
}

// run is Run with the slab size as a parameter, so that tests can make
// tensors span several slabs.
func run(in, out string, target Target, opts Options, slab int) error {
	f, err := gguf.Open(in)
	if err != nil {
		return fmt.Errorf("quantize: reading %s: %w", in, err)
	}
	defer f.Close()

	plans, err := Plan(f, target)
	if err != nil {
		return err
	}
	for _, p := range plans {
		if err := checkConvertible(p, opts.AllowRequantize); err != nil {
			return err
		}
	}

	w := gguf.NewWriter()
	for _, kv := range f.KV {
		switch kv.Key {
		case keyQuantVersion, keyFileType, "split.no", "split.count", "split.tensors.count":
			continue
		}
		w.Set(kv.Key, kv.Value)
	}
	w.Set(keyQuantVersion, gguf.Uint32(quantVersion))
	w.Set(keyFileType, gguf.Uint32(target.ftype))

	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	conv := &converter{threads: threads, slab: slab}
	for i := range plans {
		p := &plans[i]
		err := w.AddTensorFunc(p.Name, p.To, p.Shape, func(out io.Writer) error {
			if err := conv.write(out, f, p); err != nil {
				return err
			}
			if opts.Progress != nil {
				opts.Progress(i, len(plans), *p)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("quantize: %w", err)
		}
	}
	if err := w.WriteFile(out); err != nil {
		return fmt.Errorf("quantize: writing %s: %w", out, err)
	}
	return nil
}

// converter converts tensors slab by slab, keeping its buffers between
// tensors.
type converter struct {
	threads int
	slab    int         // float32 elements converted at once
	floats  [][]float32 // one per worker
	dst     []byte
}

// write writes the output data of one tensor. Its errors do not name the
// tensor: the gguf Writer that calls it does.
func (c *converter) write(out io.Writer, f *gguf.File, p *TensorPlan) error {
	src := f.TensorData(p.info)
	if uint64(len(src)) != p.InSize {
		return errors.New("data outside the file")
	}
	if !p.Converts() {
		if err := checkData(p.From, src, 0); err != nil {
			return fmt.Errorf("input %s data: %v", p.From, err)
		}
		_, err := out.Write(src)
		releasePages(src)
		return err
	}

	nPerRow, nRows := int(p.Shape[0]), rowsOf(p.Shape)
	if nPerRow == 0 || nRows == 0 {
		return nil // an empty tensor has no data
	}
	rowIn := len(src) / nRows
	rowOut := int(p.OutSize) / nRows
	slabRows := max(1, min(nRows, c.slab/nPerRow))
	if need := slabRows * rowOut; len(c.dst) < need {
		c.dst = make([]byte, need)
	}
	for len(c.floats) < c.threads {
		c.floats = append(c.floats, nil)
	}

	for r0 := 0; r0 < nRows; r0 += slabRows {
		n := min(slabRows, nRows-r0)
		workers := min(c.threads, n)
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for wk := range workers {
			lo, hi := r0+n*wk/workers, r0+n*(wk+1)/workers
			if need := (hi - lo) * nPerRow; len(c.floats[wk]) < need {
				c.floats[wk] = make([]float32, need)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[wk] = convertRows(p, src[lo*rowIn:hi*rowIn], c.floats[wk][:(hi-lo)*nPerRow], c.dst[(lo-r0)*rowOut:(hi-r0)*rowOut], lo, hi)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		releasePages(src[r0*rowIn : (r0+n)*rowIn])
		if _, err := out.Write(c.dst[:n*rowOut]); err != nil {
			return err
		}
	}
	return nil
}

// convertRows converts rows [lo, hi) of a tensor: src holds their input
// bytes, floats and dst are sized for them.
func convertRows(p *TensorPlan, src []byte, floats []float32, dst []byte, lo, hi int) error {
	// Rows are whole blocks, so lo rows are this many elements or blocks.
	firstIn := lo * (len(src) / (hi - lo)) / p.From.TypeSize()
	if err := checkData(p.From, src, firstIn); err != nil {
		return fmt.Errorf("input %s data: %v", p.From, err)
	}
	if err := tensor.Dequantize(p.From, src, floats); err != nil {
		return err
	}
	if err := tensor.Quantize(p.To, floats, dst); err != nil {
		return err
	}
	firstOut := lo * (len(dst) / (hi - lo)) / p.To.TypeSize()
	if err := checkData(p.To, dst, firstOut); err != nil {
		return fmt.Errorf("the %s result is not finite (%v): the weights are too large for %s", p.To, err, p.To)
	}
	return nil
}

// rowsOf is the number of rows of a shape: every dimension but the first.
func rowsOf(shape []uint64) int {
	n := 1
	for _, d := range shape[1:] {
		n *= int(d)
	}
	return n
}
