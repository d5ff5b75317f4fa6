package llamacpp

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"llamago/tensor"
)

// purego can make only a fixed number of C callbacks per process, so there
// is one eval callback (made in load) and the context it serves is found
// through cb_eval_user_data, a handle into Lib.evalTargets.

func (l *Lib) registerEval(c *Context) uintptr {
	l.evalMu.Lock()
	defer l.evalMu.Unlock()
	l.evalNext++
	l.evalTargets[l.evalNext] = c
	return l.evalNext
}

func (l *Lib) unregisterEval(h uintptr) {
	if h == 0 {
		return
	}
	l.evalMu.Lock()
	defer l.evalMu.Unlock()
	delete(l.evalTargets, h)
}

func (l *Lib) evalTarget(h uintptr) *Context {
	l.evalMu.Lock()
	defer l.evalMu.Unlock()
	return l.evalTargets[h]
}

// onEval is the C ggml_backend_sched_eval_callback. The scheduler first
// asks (ask=true) whether a node is wanted; it then computes the graph up
// to that node and calls again with ask=false, where returning false stops
// the remaining computation of the split. So: ask answers the filter, and
// the data call returns true unless the Go side failed.
func (l *Lib) onEval(t *cTensor, ask bool, userData uintptr) (ok bool) {
	c := l.evalTarget(userData)
	if c == nil || c.evalErr != nil {
		return false
	}
	defer func() {
		// A panic must not unwind through C frames.
		if r := recover(); r != nil {
			c.evalErr = fmt.Errorf("panic: %v", r)
			ok = false
		}
	}()
	if !c.layoutChecked {
		// Once per context, check the Go mirror of struct ggml_tensor
		// against ggml's own accessors: a wrong layout would otherwise
		// give plausible-looking garbage.
		c.layoutChecked = true
		if err := l.checkTensorLayout(t); err != nil {
			c.evalErr = err
			return false
		}
	}
	name := cStringN(t.Name[:])
	if ask {
		return c.evalFilter == nil || c.evalFilter(name)
	}
	et := &EvalTensor{
		Name: name,
		Op:   cString(l.c.ggmlOpDesc(t)),
		Type: tensor.Type(uint32(t.Type)),
		NDim: int(l.c.ggmlNDims(t)),
		Ne:   t.Ne,
	}
	data, err := c.readTensor(t)
	if err != nil {
		et.Raw = err.Error()
	} else {
		et.Data = data
	}
	c.eval(et)
	return true
}

// checkTensorLayout compares fields read through cTensor with ggml's
// accessor functions.
func (l *Lib) checkTensorLayout(t *cTensor) error {
	name, cName := cStringN(t.Name[:]), cString(l.c.ggmlGetName(t))
	nd := 1
	for i := 1; i < ggmlMaxDims; i++ {
		if t.Ne[i] != 1 {
			nd = i + 1
		}
	}
	if name != cName || int32(nd) != l.c.ggmlNDims(t) {
		return fmt.Errorf("struct ggml_tensor layout mismatch: name %q vs %q, dims %d vs %d (ne %v)",
			name, cName, nd, l.c.ggmlNDims(t), t.Ne)
	}
	return nil
}

// readTensor copies a node to the host and converts it to float32 in
// ne[0]-fastest order, following its strides (views are not contiguous).
func (c *Context) readTensor(t *cTensor) ([]float32, error) {
	l := c.model.lib
	for _, n := range t.Ne {
		if n < 0 {
			return nil, fmt.Errorf("negative shape %v", t.Ne)
		}
	}
	count := t.Ne[0] * t.Ne[1] * t.Ne[2] * t.Ne[3]
	if count == 0 {
		return []float32{}, nil
	}
	typ := tensor.Type(uint32(t.Type))
	tr, err := l.traits(typ)
	if err != nil {
		return nil, err
	}
	buffer := t.Buffer
	if t.ViewSrc != nil {
		buffer = t.ViewSrc.Buffer
	}
	if buffer == 0 || t.Data == 0 {
		// ggml_backend_tensor_get would abort the process.
		return nil, fmt.Errorf("tensor has no data")
	}
	nbytes := l.c.ggmlNBytes(t)
	if uint64(cap(c.scratch)) < nbytes {
		c.scratch = make([]byte, nbytes)
	}
	raw := c.scratch[:nbytes]
	l.c.ggmlBackendTensorGet(t, unsafe.Pointer(&raw[0]), 0, nbytes)
	return l.stridedToFloat(typ, tr, t.Ne, t.Nb, raw)
}

// stridedToFloat converts the elements of a tensor of shape ne and byte
// strides nb, whose bytes are raw (offset 0 is element 0), to float32 in
// ne[0]-fastest order.
func (l *Lib) stridedToFloat(typ tensor.Type, tr *typeTraits, ne [4]int64, nb [4]uint64, raw []byte) ([]float32, error) {
	count := ne[0] * ne[1] * ne[2] * ne[3]
	// Gather the blocks (elements, for plain types) into a contiguous
	// buffer, then convert it in one go.
	blck, tsize := tr.BlckSize, int64(tr.TypeSize)
	if ne[0]%blck != 0 {
		return nil, fmt.Errorf("row of %d is not whole %d-element blocks", ne[0], blck)
	}
	unitsPerRow := ne[0] / blck
	packed := make([]byte, count/blck*tsize)
	rowBytes := unitsPerRow * tsize
	size := int64(len(raw))
	dst := int64(0)
	for i3 := range ne[3] {
		for i2 := range ne[2] {
			for i1 := range ne[1] {
				base := int64(nb[1])*i1 + int64(nb[2])*i2 + int64(nb[3])*i3
				if int64(nb[0]) == tsize {
					if base+rowBytes > size {
						return nil, fmt.Errorf("strides %v overrun %d bytes", nb, size)
					}
					copy(packed[dst:dst+rowBytes], raw[base:base+rowBytes])
					dst += rowBytes
					continue
				}
				for u := range unitsPerRow {
					off := base + int64(nb[0])*u
					if off+tsize > size {
						return nil, fmt.Errorf("strides %v overrun %d bytes", nb, size)
					}
					copy(packed[dst:dst+tsize], raw[off:off+tsize])
					dst += tsize
				}
			}
		}
	}

	out := make([]float32, count)
	switch typ {
	case tensor.F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(packed[4*i:]))
		}
	case tensor.I32:
		for i := range out {
			out[i] = float32(int32(binary.LittleEndian.Uint32(packed[4*i:])))
		}
	default:
		if tr.ToFloat == 0 {
			return nil, fmt.Errorf("no conversion from %s to float", typ)
		}
		l.toFloat(tr, unsafe.Pointer(&packed[0]), out)
	}
	return out, nil
}
