//go:build amd64

package kernels

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/cpu"

	"llamago/tensor"
)

// kernelName names the Go function behind a kernel, for the test log.
func kernelName(f any) string {
	if reflect.ValueOf(f).IsNil() {
		return "-"
	}
	name := runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name()
	return name[strings.LastIndex(name, ".")+1:]
}

// TestSIMDCoverage checks that the sets this CPU should run are there and
// that every weight type has an assembly kernel in each of them (a kernel
// that silently stayed portable would pass every comparison with the
// portable set), and logs which kernel each set uses for each type.
func TestSIMDCoverage(t *testing.T) {
	want := map[string]bool{
		"avx2":       cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C,
		"avx512":     cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL,
		"avx512vnni": cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512VNNI,
	}
	have := map[string]*Set{}
	for _, s := range fastSets(t) {
		have[s.Name()] = s
	}
	for name, ok := range want {
		if ok && want["avx2"] && have[name] == nil {
			t.Errorf("the CPU supports %s but Available() lacks it", name)
		}
		if !ok && have[name] != nil {
			t.Errorf("Available() offers %s, which the CPU cannot run", name)
		}
	}
	for _, s := range fastSets(t) {
		var line []string
		for _, wt := range weightTypes {
			f, _ := s.DotFunc(wt)
			name := kernelName(f)
			// BF16 has only a VDPBF16PS kernel (AVX512_BF16): elsewhere
			// it is the portable emulation of that instruction.
			noBF16 := s.Name() == "avx2" || !cpu.X86.HasAVX512BF16
			if !strings.Contains(name, "AVX") && !strings.Contains(name, "VNNI") && !(wt == tensor.BF16 && noBF16) {
				t.Errorf("set %s has no assembly kernel for %s (uses %s)", s.Name(), wt, name)
			}
			if s.dot4[wt] != nil {
				name += "+" + kernelName(s.dot4[wt])
			}
			if s.dot8[wt] != nil {
				name += "+" + kernelName(s.dot8[wt])
			}
			if tk := s.tile[wt]; tk.f != nil {
				name += fmt.Sprintf("+%s(%dx%d)", kernelName(tk.f), tk.rows, tk.toks)
			}
			line = append(line, wt.String()+":"+name)
		}
		t.Logf("%s: %s", s.Name(), strings.Join(line, " "))
	}
}
