package judge

import "math"

const epsilon = 0x1p-52 // DBL_EPSILON

// zeroin finds a root of f in [a, b] given f(a) and f(b) of opposite signs, by Brent's
// method (bisection safeguarding secant and inverse quadratic interpolation) with R's
// stopping rule: |step| <= 2·eps·|b| + tol/2. It follows the steps of R's uniroot one
// for one, which matters where f is a step function that is zero over an interval (the
// Hodges-Lehmann root of an even number of differences): the root R reports is the
// first iterate that lands inside that interval, so only the same iterates give the same
// answer.
func zeroin(f func(float64) float64, a, b, fa, fb, tol float64, maxIter int) float64 {
	if fa == 0 {
		return a
	}
	if fb == 0 {
		return b
	}
	c, fc := a, fa
	for range maxIter + 1 {
		prevStep := b - a
		if math.Abs(fc) < math.Abs(fb) {
			// Keep b the best guess: swap so |f(b)| <= |f(c)|.
			a, b, c = b, c, b
			fa, fb, fc = fb, fc, fb
		}
		tolAct := 2*epsilon*math.Abs(b) + tol/2
		newStep := (c - b) / 2
		if math.Abs(newStep) <= tolAct || fb == 0 {
			return b
		}
		if math.Abs(prevStep) >= tolAct && math.Abs(fa) > math.Abs(fb) {
			// Try interpolation: secant when only two points are distinct, inverse
			// quadratic otherwise.
			var p, q float64
			cb := c - b
			if a == c {
				t1 := fb / fa
				p = cb * t1
				q = 1.0 - t1
			} else {
				q = fa / fc
				t1 := fb / fc
				t2 := fb / fa
				p = t2 * (cb*q*(q-t1) - (b-a)*(t1-1.0))
				q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
			}
			if p > 0 {
				q = -q
			} else {
				p = -p
			}
			// Accept the interpolation only if it falls well inside the bracket and
			// shrinks faster than bisection did.
			if p < (0.75*cb*q-math.Abs(tolAct*q)/2) && p < math.Abs(prevStep*q/2) {
				newStep = p / q
			}
		}
		if math.Abs(newStep) < tolAct {
			if newStep > 0 {
				newStep = tolAct
			} else {
				newStep = -tolAct
			}
		}
		a, fa = b, fb
		b += newStep
		fb = f(b)
		if (fb > 0 && fc > 0) || (fb < 0 && fc < 0) {
			c, fc = a, fa
		}
	}
	return b
}
