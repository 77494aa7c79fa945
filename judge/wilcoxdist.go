package judge

import "math/bits"

// u128 is an unsigned 128-bit integer. The counts of the exact null distribution of U
// reach C(98, 49) ≈ 2.5e28 for two samples of 49 points: too big for uint64, and float64
// would lose the exactness that R's pwilcox/qwilcox keep.
type u128 struct{ hi, lo uint64 }

func (a u128) add(b u128) u128 {
	lo, carry := bits.Add64(a.lo, b.lo, 0)
	hi, _ := bits.Add64(a.hi, b.hi, carry)
	return u128{hi, lo}
}

func (a u128) sub(b u128) u128 {
	lo, borrow := bits.Sub64(a.lo, b.lo, 0)
	hi, _ := bits.Sub64(a.hi, b.hi, borrow)
	return u128{hi, lo}
}

func (a u128) float() float64 {
	return float64(a.hi)*(1<<64) + float64(a.lo)
}

// wilcoxDist holds the exact null distribution of the Mann-Whitney U for sample sizes m
// and n: counts[u] is the number of the C(m+n, m) rank assignments whose statistic is u.
type wilcoxDist struct {
	m, n   int
	counts []u128
	total  u128
}

// build fills the distribution, reusing buf. The generating function of U is the
// Gaussian binomial coefficient [m+n choose m]_q = Π_{i=1..m} (1 − q^(n+i)) / (1 − q^i).
// Each factor is applied as a multiplication then a power-series division, in arithmetic
// modulo 2^128: intermediate coefficients may be "negative", but every partial product is
// itself a Gaussian binomial with non-negative coefficients below 2^128, so the wrapped
// arithmetic lands on the exact counts. O(m²n) additions, no allocation when buf is big
// enough.
func (d *wilcoxDist) build(m, n int, buf []u128) []u128 {
	if m > n {
		m, n = n, m // the distribution is symmetric in (m, n); fewer factors this way
	}
	top := m * n
	// The scheduler judges many canaries with the same sample sizes in a row: when buf
	// still holds the distribution this scratch built last, it is the answer.
	if d.counts != nil && d.m == m && d.n == n && len(buf) > top && &buf[0] == &d.counts[0] {
		return buf
	}
	if cap(buf) < top+1 {
		buf = make([]u128, top+1)
	}
	c := buf[:top+1]
	clear(c)
	c[0] = u128{0, 1}
	for i := 1; i <= m; i++ {
		a := n + i
		for k := top; k >= a; k-- {
			c[k] = c[k].sub(c[k-a])
		}
		for k := i; k <= top; k++ {
			c[k] = c[k].add(c[k-i])
		}
	}
	var total u128
	for _, v := range c {
		total = total.add(v)
	}
	d.m, d.n, d.counts, d.total = m, n, c, total
	return buf
}

// cdf is P(U <= q) (R's pwilcox(q, m, n)).
func (d *wilcoxDist) cdf(q float64) float64 {
	top := len(d.counts) - 1
	if q < 0 {
		return 0
	}
	if q >= float64(top) {
		return 1
	}
	k := int(q + 1e-7) // R floors q + 1e-7 to absorb representation error
	var s u128
	for u := 0; u <= k; u++ {
		s = s.add(d.counts[u])
	}
	return s.float() / d.total.float()
}

// sf is P(U > q) (R's pwilcox(q, m, n, lower.tail = FALSE)).
func (d *wilcoxDist) sf(q float64) float64 {
	top := len(d.counts) - 1
	if q < 0 {
		return 1
	}
	if q >= float64(top) {
		return 0
	}
	k := int(q + 1e-7)
	var s u128
	for u := k + 1; u <= top; u++ {
		s = s.add(d.counts[u])
	}
	return s.float() / d.total.float()
}

// quantile is R's qwilcox(p, m, n) for p <= 0.5: the smallest u with P(U <= u) >= p,
// with R's fuzz of 10 machine epsilons so that a p that is exactly attainable is found.
func (d *wilcoxDist) quantile(p float64) int {
	if p <= 0 {
		return 0
	}
	p -= 10 * epsilon
	total := d.total.float()
	var s u128
	for u := range d.counts {
		s = s.add(d.counts[u])
		if s.float()/total >= p {
			return u
		}
	}
	return len(d.counts) - 1
}
