package cuda_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"llamago/backend/cuda"
)

// timelineLaunch is one kernel launch of a decode step as the TIMELINE
// kernels stamped it: the first block's start, the return of its wait
// for the kernel before, its end, and the last block's end (ns).
type timelineLaunch struct {
	label                       string
	start, waited, end, lastEnd int64
	mid1, mid2                  int64   // rms_norm and attention: two points inside
	pre                         int64   // the first block just before its wait
	p1, p2                      int64   // attention: two points of its prologue
	blockEnds                   []int64 // every block's end (TL_BLOCKS=1), in the order they ended
	blockSMs, blockIDs          []int   // and each one's multiprocessor and blockIdx.x
}

// finish is when the launch's blocks were done, as far as the stamps tell.
func (l timelineLaunch) finish() int64 { return max(l.end, l.lastEnd) }

// stampField is the field of l that stamp s sets (nil: none kept).
func stampField(l *timelineLaunch, s cuda.TimelineStamp) *int64 {
	if s.Last {
		if s.Event == 2 {
			return &l.lastEnd
		}
		return nil
	}
	// By event (TL_… in kernels/llamago.cu): the start sets no field here.
	fields := [...]*int64{nil, &l.waited, &l.end, &l.mid1, &l.mid2, &l.pre, &l.p1, &l.p2}
	if s.Event >= 0 && s.Event < len(fields) {
		return fields[s.Event]
	}
	return nil
}

// timelineKernels names the kernels' TL_… codes (kernels/llamago.cu).
var timelineKernels = map[int]string{1: "get_rows", 2: "rms_norm", 3: "mvq", 4: "mvq_glu", 5: "attention", 6: "copy_rows", 7: "act", 8: "other"}

// timelineLaunches groups the stamps into launches, in the order their
// first blocks started, and names the one-token products by the kernel
// before them: q/k/v after a norm, o after attention, down after
// mvq_glu, output after the rounding.
func timelineLaunches(stamps []cuda.TimelineStamp) []timelineLaunch {
	slices.SortStableFunc(stamps, func(a, b cuda.TimelineStamp) int {
		switch {
		case a.At < b.At:
			return -1
		case a.At > b.At:
			return 1
		}
		return 0
	})
	var out []timelineLaunch
	var ends []cuda.TimelineStamp
	// A kernel's launches wait and end in the order they started, but a
	// launch can start before the one of the same kernel two launches back
	// has ended (programmatic dependent launch): each stamp goes to the
	// earliest launch of its kernel still without it.
	started := map[int][]int{} // kernel → its launches, in order
	for _, s := range stamps {
		if s.Any {
			ends = append(ends, s)
			continue
		}
		if !s.Last && s.Event == 0 {
			label := timelineKernels[s.Kernel]
			if label == "mvq" && len(out) > 0 {
				switch prev := out[len(out)-1].label; {
				case prev == "rms_norm":
					label = "mvq q/k/v"
				case prev == "attention":
					label = "mvq o"
				case prev == "mvq_glu":
					label = "mvq down"
				default:
					label = "mvq after " + prev
				}
			}
			started[s.Kernel] = append(started[s.Kernel], len(out))
			out = append(out, timelineLaunch{label: label, start: s.At})
			continue
		}
		for _, i := range started[s.Kernel] {
			if at := stampField(&out[i], s); at != nil && *at == 0 {
				*at = s.At
				break
			}
		}
	}
	// Every block's end (TL_BLOCKS=1): a launch's blocks end after those
	// of the launches before it (they wait for them), so in slot order
	// the stamps fall into runs of one kernel, a run a launch.
	slices.SortFunc(ends, func(a, b cuda.TimelineStamp) int { return cmp.Compare(a.Slot, b.Slot) })
	li := -1
	for i, s := range ends {
		if i == 0 || s.Kernel != ends[i-1].Kernel {
			li++
			for li < len(out) && timelineKernels[s.Kernel] != out[li].kernel() {
				li++ // a launch whose blocks did not stamp their ends
			}
		}
		if li < len(out) {
			out[li].blockEnds = append(out[li].blockEnds, s.At)
			out[li].blockSMs = append(out[li].blockSMs, s.SM)
			out[li].blockIDs = append(out[li].blockIDs, s.Block)
		}
	}
	return out
}

// blockReport tells how a launch's blocks fell on the multiprocessors
// and when they ended: by the number of the launch's blocks on a
// multiprocessor, how many multiprocessors had that many and when their
// last block ended (mean, latest); then the ten blocks that ended last.
func blockReport(l timelineLaunch, at func(int64) float64) string {
	perSM := map[int]int{}
	lastOnSM := map[int]int64{}
	for k, sm := range l.blockSMs {
		perSM[sm]++
		lastOnSM[sm] = max(lastOnSM[sm], l.blockEnds[k])
	}
	type group struct {
		sms    int
		sum    float64
		latest int64
	}
	groups := map[int]*group{}
	for sm, n := range perSM {
		g := groups[n]
		if g == nil {
			g = &group{}
			groups[n] = g
		}
		g.sms++
		g.sum += at(lastOnSM[sm])
		g.latest = max(g.latest, lastOnSM[sm])
	}
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(groups)) {
		g := groups[n]
		fmt.Fprintf(&b, "\n        %2d blocks on %3d multiprocessors: their last ended at %8.2f µs on average, %8.2f at the latest", n, g.sms, g.sum/float64(g.sms), at(g.latest))
	}
	idx := make([]int, len(l.blockEnds))
	for k := range idx {
		idx[k] = k
	}
	slices.SortFunc(idx, func(a, c int) int { return cmp.Compare(l.blockEnds[c], l.blockEnds[a]) }) // latest first
	b.WriteString("\n        last to end (block@multiprocessor[its blocks] time):")
	for _, k := range idx[:min(10, len(idx))] {
		fmt.Fprintf(&b, " %d@%d[%d] %.2f", l.blockIDs[k], l.blockSMs[k], perSM[l.blockSMs[k]], at(l.blockEnds[k]))
	}
	return b.String()
}

// kernel is the name of the launch's kernel, without the product's role.
func (l timelineLaunch) kernel() string {
	if strings.HasPrefix(l.label, "mvq ") {
		return "mvq"
	}
	return l.label
}

// slowest is when the launch's last block to end ended (0: not stamped).
func (l timelineLaunch) slowest() int64 {
	if len(l.blockEnds) == 0 {
		return 0
	}
	return slices.Max(l.blockEnds)
}

// TestDecodeTimeline times the kernels of a decode step on the GPU's clock
// (kernels built with -DTIMELINE=1: scripts/cuda-timeline.sh): for each
// kind of launch, how much it adds to the step (from the end of the launch
// before to its own end), how long its first block waited after the
// launch before had ended, and how long it ran after its wait. It only
// reports; it fails when the stamps are missing.
func TestDecodeTimeline(t *testing.T) {
	gpu := needGPU(t)
	f := openTinyLlama(t, "LLAMAGO_CUDA_TIMELINE", "set LLAMAGO_CUDA_TIMELINE=1, LLAMAGO_CUDA_PTX to kernels built with -DTIMELINE=1 and LLAMAGO_CUDA_TINYLLAMA to a TinyLlama-shaped file")
	r := loadRun(t, f, gpu, 256, false)
	greedy(t, r, []int32{1, 450, 2030, 17526, 13}, 48) // graphs captured, 53 positions
	type sum struct {
		n                     int
		adds, waits, runs     int64
		toMid1, toMid2, toEnd int64
		nPre, prologue, sat   int64 // first block: start to just before its wait, from there to the wait's return
		nP, toP1, toP2, toPre int64 // attention's first block: start to the two points of its prologue, to just before its wait
		nSlow, afterSlowest   int64 // the wait's return after the slowest block of the launch before
		spread, lateness      int64 // the launch's own blocks: slowest less median end, slowest less finish()
		blocks                int64
	}
	sums := map[string]*sum{}
	var order []string
	const steps = 8
	var total int64
	for step := range steps {
		if err := cuda.ResetTimeline(gpu); err != nil {
			t.Fatal(err)
		}
		if _, err := r.sess.Eval(context.Background(), []int32{450}); err != nil {
			t.Fatal(err)
		}
		stamps, err := cuda.ReadTimeline(gpu)
		if err != nil {
			t.Fatal(err)
		}
		ls := timelineLaunches(stamps)
		if len(ls) < 10 {
			t.Fatalf("%d launches stamped (%d stamps)", len(ls), len(stamps))
		}
		total += ls[len(ls)-1].finish() - ls[0].start
		var b strings.Builder
		for i, l := range ls {
			if i == 0 {
				continue
			}
			prev := ls[i-1].finish()
			s := sums[l.label]
			if s == nil {
				s = &sum{}
				sums[l.label] = s
				order = append(order, l.label)
			}
			s.n++
			s.adds += l.finish() - prev
			s.waits += l.waited - prev
			s.runs += l.finish() - l.waited
			if l.mid1 != 0 && l.mid2 != 0 {
				s.toMid1 += l.mid1 - l.waited
				s.toMid2 += l.mid2 - l.mid1
				s.toEnd += l.end - l.mid2
			}
			if l.p1 != 0 && l.p2 != 0 && l.pre != 0 {
				s.nP++
				s.toP1 += l.p1 - l.start
				s.toP2 += l.p2 - l.p1
				s.toPre += l.pre - l.p2
			}
			if l.pre != 0 {
				s.nPre++
				s.prologue += l.pre - l.start
				s.sat += l.waited - l.pre
			}
			if p := ls[i-1].slowest(); p != 0 {
				s.nSlow++
				s.afterSlowest += l.waited - p
			}
			if len(l.blockEnds) > 0 {
				e := slices.Clone(l.blockEnds)
				slices.Sort(e)
				s.spread += e[len(e)-1] - e[len(e)/2]
				s.lateness += e[len(e)-1] - l.finish()
				s.blocks += int64(len(e))
			}
			if step == steps-1 {
				at := func(v int64) float64 {
					if v == 0 {
						return 0
					}
					return float64(v-ls[0].start) / 1e3
				}
				fmt.Fprintf(&b, "\n  %3d %-14s start %8.2f µs, before its wait %8.2f, waited %8.2f, end %8.2f, last block's end %8.2f", i, l.label,
					at(l.start), at(l.pre), at(l.waited), at(l.end), at(l.lastEnd))
				if len(l.blockEnds) > 0 {
					e := slices.Clone(l.blockEnds)
					slices.Sort(e)
					fmt.Fprintf(&b, "; %d blocks ended %8.2f…%8.2f (median %8.2f, 90%% %8.2f)", len(e), at(e[0]), at(e[len(e)-1]), at(e[len(e)/2]), at(e[len(e)*9/10]))
					if i >= len(ls)-40 && len(e) > 100 {
						b.WriteString(blockReport(l, at))
					}
				}
			}
		}
		if step == steps-1 {
			t.Logf("last step, its launches (from the first block's start):%s", b.String())
		}
	}
	var b strings.Builder
	for _, k := range order {
		s := sums[k]
		fmt.Fprintf(&b, "\n  %-16s %4d a step: adds %7.1f µs a step (%5.2f each); waited %5.2f µs after the one before ended; ran %5.2f after its wait",
			k, s.n/steps, float64(s.adds)/1e3/steps, float64(s.adds)/1e3/float64(s.n), float64(s.waits)/1e3/float64(s.n), float64(s.runs)/1e3/float64(s.n))
		if s.toMid1 != 0 {
			fmt.Fprintf(&b, " (first block: %.2f to its first inner point, %.2f to its second, %.2f to its end)",
				float64(s.toMid1)/1e3/float64(s.n), float64(s.toMid2)/1e3/float64(s.n), float64(s.toEnd)/1e3/float64(s.n))
		}
		if s.nPre != 0 {
			fmt.Fprintf(&b, "; first block's prologue %.2f, then waiting %.2f", float64(s.prologue)/1e3/float64(s.nPre), float64(s.sat)/1e3/float64(s.nPre))
		}
		if s.nP != 0 {
			fmt.Fprintf(&b, " (%.2f to its first point, %.2f to its second, %.2f to the wait)",
				float64(s.toP1)/1e3/float64(s.nP), float64(s.toP2)/1e3/float64(s.nP), float64(s.toPre)/1e3/float64(s.nP))
		}
		if s.nSlow != 0 {
			fmt.Fprintf(&b, "; waited %.2f after the slowest block of the launch before", float64(s.afterSlowest)/1e3/float64(s.nSlow))
		}
		if s.blocks != 0 {
			fmt.Fprintf(&b, "; %d blocks, slowest %.2f after the median block and %.2f after the first and last",
				s.blocks/int64(s.n), float64(s.spread)/1e3/float64(s.n), float64(s.lateness)/1e3/float64(s.n))
		}
	}
	t.Logf("decode step at position ~55, %d steps: %.1f µs from the first kernel's start to the last one's end%s",
		steps, float64(total)/1e3/steps, b.String())
}

// TestTimelineLaunches checks the grouping of stamps into launches (no
// GPU): a launch that starts before the one of its kernel two launches
// back has ended takes none of that launch's stamps, the products are
// named by the kernel before them, stamps arrive out of order, and every
// block's end stamp goes to its launch by slot order, not by time.
func TestTimelineLaunches(t *testing.T) {
	st := func(kernel, event int, last bool, at int64) cuda.TimelineStamp {
		return cuda.TimelineStamp{Kernel: kernel, Event: event, Last: last, At: at}
	}
	end := func(kernel, slot int, at int64) cuda.TimelineStamp {
		return cuda.TimelineStamp{Kernel: kernel, Event: 2, Any: true, Slot: slot, At: at}
	}
	const norm, mvq, attn = 2, 3, 5
	stamps := []cuda.TimelineStamp{
		st(mvq, 0, false, 10), st(mvq, 5, false, 20), st(mvq, 1, false, 30), st(mvq, 2, false, 60), st(mvq, 0, true, 12), st(mvq, 2, true, 70),
		st(norm, 0, false, 5), st(norm, 1, false, 6), st(norm, 3, false, 7), st(norm, 4, false, 8), st(norm, 2, false, 9),
		// attention and the next product start before the first product ends
		st(attn, 0, false, 40), st(attn, 1, false, 75), st(attn, 2, false, 90), st(attn, 2, true, 92),
		st(mvq, 0, false, 50), st(mvq, 1, false, 95), st(mvq, 2, false, 120), st(mvq, 2, true, 118),
		// block ends: the norm's, three of the first product's (one later
		// in time than an attention block's), attention's, the second
		// product's
		end(mvq, 4, 71), end(norm, 1, 9), end(mvq, 2, 60), end(mvq, 3, 74), end(attn, 6, 73), end(attn, 5, 92),
		end(mvq, 9, 120), end(mvq, 8, 118),
	}
	got := timelineLaunches(stamps)
	want := []timelineLaunch{
		{label: "rms_norm", start: 5, waited: 6, end: 9, mid1: 7, mid2: 8, blockEnds: []int64{9}, blockSMs: []int{0}, blockIDs: []int{0}},
		{label: "mvq q/k/v", start: 10, pre: 20, waited: 30, end: 60, lastEnd: 70, blockEnds: []int64{60, 74, 71}, blockSMs: []int{0, 0, 0}, blockIDs: []int{0, 0, 0}},
		{label: "attention", start: 40, waited: 75, end: 90, lastEnd: 92, blockEnds: []int64{92, 73}, blockSMs: []int{0, 0}, blockIDs: []int{0, 0}},
		{label: "mvq o", start: 50, waited: 95, end: 120, lastEnd: 118, blockEnds: []int64{118, 120}, blockSMs: []int{0, 0}, blockIDs: []int{0, 0}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("launches:\n got %+v\nwant %+v", got, want)
	}
	if f := got[3].finish(); f != 120 {
		t.Errorf("finish %d, want 120", f)
	}
	if s := got[1].slowest(); s != 74 {
		t.Errorf("slowest %d, want 74", s)
	}
}
