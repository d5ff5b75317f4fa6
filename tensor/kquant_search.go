package tensor

// The scale searches of ggml's k-quant reference quantizers
// (make_qx_quants, make_q3_quants, make_qkx2_quants in ggml-quants.c).
// They pick a sub-block scale (and minimum) by trying a few candidate
// scales and keeping the one with the smallest weighted error. To come out
// bit-identical, every sum runs in float32 in ggml's order, int operands
// are converted to float32 where C promotes them, and each product that C
// rounds before an add is wrapped in float32() so it can never be fused.

// groupMaxEps is ggml's GROUP_MAX_EPS: groups below it count as all zero.
const groupMaxEps = 1e-15

// makeQXQuants is make_qx_quants with rmse_type 1 and no importance
// weights (each value weighted by its square), the only form the Q6_K
// reference quantizer uses. It fills L with codes in [0, 2*nmax) (code -
// nmax is the signed quant) and returns the scale.
func makeQXQuants(nmax int, x []float32, L []int8) float32 {
	var max, amax float32
	for _, v := range x {
		if ax := abs32(v); ax > amax {
			amax = ax
			max = v
		}
	}
	if amax < groupMaxEps {
		clear(L[:len(x)])
		return 0
	}
	fnmax := float32(nmax)
	iscale := -fnmax / max
	var sumlx, suml2 float32
	for i, v := range x {
		l := clampInt(nearestInt(iscale*v), -nmax, nmax-1)
		L[i] = int8(l + nmax)
		w := float32(v * v)
		fl := float32(l)
		sumlx += float32(float32(w*v) * fl)
		suml2 += float32(float32(w*fl) * fl)
	}
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	best := float32(scale * sumlx)
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(fnmax + float32(0.1*float32(is))) / max
		sumlx, suml2 = 0, 0
		for _, v := range x {
			l := clampInt(nearestInt(iscale*v), -nmax, nmax-1)
			w := float32(v * v)
			fl := float32(l)
			sumlx += float32(float32(w*v) * fl)
			suml2 += float32(float32(w*fl) * fl)
		}
		if suml2 > 0 && float32(sumlx*sumlx) > float32(best*suml2) {
			for i, v := range x {
				L[i] = int8(nmax + clampInt(nearestInt(iscale*v), -nmax, nmax-1))
			}
			scale = sumlx / suml2
			best = float32(scale * sumlx)
		}
	}
	return scale
}

// makeQ3Quants is make_q3_quants with do_rmse set (as Q3_K uses it):
// an initial rounding, then up to five passes that move single codes
// whenever that improves the weighted fit. L gets codes in [0, 2*nmax),
// except for an all-zero group, which ggml leaves at 0.
func makeQ3Quants(nmax int, x []float32, L []int8) float32 {
	var max, amax float32
	for _, v := range x {
		if ax := abs32(v); ax > amax {
			amax = ax
			max = v
		}
	}
	if amax < groupMaxEps {
		clear(L[:len(x)])
		return 0
	}
	iscale := -float32(nmax) / max
	var sumlx, suml2 float32
	for i, v := range x {
		l := clampInt(nearestInt(iscale*v), -nmax, nmax-1)
		L[i] = int8(l)
		w := float32(v * v)
		fl := float32(l)
		sumlx += float32(float32(w*v) * fl)
		suml2 += float32(float32(w*fl) * fl)
	}
	for itry := 0; itry < 5; itry++ {
		changed := 0
		for i, v := range x {
			w := float32(v * v)
			fli := float32(L[i])
			slx := sumlx - float32(float32(w*v)*fli)
			if slx > 0 {
				sl2 := suml2 - float32(float32(w*fli)*fli)
				newL := clampInt(nearestInt(float32(v*sl2)/slx), -nmax, nmax-1)
				if newL != int(L[i]) {
					fnl := float32(newL)
					slx += float32(float32(w*v) * fnl)
					sl2 += float32(float32(w*fnl) * fnl)
					if sl2 > 0 && float32(float32(slx*slx)*suml2) > float32(float32(sumlx*sumlx)*sl2) {
						L[i] = int8(newL)
						sumlx, suml2 = slx, sl2
						changed++
					}
				}
			}
		}
		if changed == 0 {
			break
		}
	}
	for i := range x {
		L[i] += int8(nmax)
	}
	if suml2 > 0 {
		return sumlx / suml2
	}
	return 0
}

// makeQKX2Quants is make_qkx2_quants: it fits x ≈ scale*L - theMin with
// codes L in [0, nmax], scanning nstep+1 candidate scales around nmax
// (rmin + rdelta*is extra steps) and solving the weighted least squares
// for each. useMAD picks absolute instead of squared error. laux is
// scratch of len(x).
func makeQKX2Quants(nmax int, x, weights []float32, L, laux []uint8, rmin, rdelta float32, nstep int, useMAD bool) (scale, theMin float32) {
	n := len(x)
	min, max := x[0], x[0]
	sumW := weights[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < n; i++ {
		if x[i] < min {
			min = x[i]
		}
		if x[i] > max {
			max = x[i]
		}
		w := weights[i]
		sumW += w
		sumX += float32(w * x[i])
	}
	if min > 0 {
		min = 0
	}
	if max == min {
		clear(L[:n])
		return 0, -min
	}
	fnmax := float32(nmax)
	iscale := fnmax / (max - min)
	scale = 1 / iscale
	errorOf := func(diff float32) float32 {
		if useMAD {
			return abs32(diff)
		}
		return float32(diff * diff)
	}
	var bestError float32
	for i, v := range x {
		L[i] = uint8(clampInt(nearestInt(iscale*(v-min)), 0, nmax))
		diff := float32(scale*float32(L[i])) + min - v
		bestError += float32(weights[i] * errorOf(diff))
	}
	if nstep < 1 {
		return scale, -min
	}
	for is := 0; is <= nstep; is++ {
		iscale = (rmin + float32(rdelta*float32(is)) + fnmax) / (max - min)
		var sumL, sumL2, sumXL float32
		for i, v := range x {
			l := clampInt(nearestInt(iscale*(v-min)), 0, nmax)
			laux[i] = uint8(l)
			wl := float32(weights[i] * float32(l))
			sumL += wl
			sumL2 += float32(wl * float32(l))
			sumXL += float32(wl * v)
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if D > 0 {
			thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
			thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var curError float32
			for i, v := range x {
				diff := float32(thisScale*float32(laux[i])) + thisMin - v
				curError += float32(weights[i] * errorOf(diff))
			}
			if curError < bestError {
				copy(L[:n], laux[:n])
				bestError = curError
				scale = thisScale
				min = thisMin
			}
		}
	}
	return scale, -min
}

// scaleMinK4 is get_scale_min_k4: the 6-bit scale and minimum of
// sub-block j (0..7) from the 12 packed bytes q of Q4_K and Q5_K.
// Sub-blocks 0-3 keep theirs in the low 6 bits of q[j] and q[j+4]; 4-7 in
// the nibbles of q[j+4] plus the top 2 bits of q[j-4] and q[j].
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0x0f | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}
