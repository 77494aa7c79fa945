package judge

import "slices"

// pairSelector finds order statistics of the n·m pairwise differences x[i] − y[j] of two
// sorted samples without building them. The differences form a matrix whose rows (fixed
// i, y taken from largest to smallest) and columns both ascend, so the number of entries
// below a value is one staircase walk of O(n+m); kth needs a few such walks and memory
// O(n+m).
//
// Every difference is computed by the same expression, x[i] - y[m-1-j], so the values
// selected are bit for bit the entries of R's sort(outer(x, y, "-")).
type pairSelector struct {
	x, y []float64
	// Per-row counts of entries <= the bracket's lower end (leLo) and upper end (leHi),
	// and the probe's < and <= counts.
	leLo, leHi, probeLT, probeLE []int
	cand                         []float64
}

func (s *pairSelector) reset(x, y []float64) {
	s.x, s.y = x, y
	n := len(x)
	s.leLo = resizeInts(s.leLo, n)
	s.leHi = resizeInts(s.leHi, n)
	s.probeLT = resizeInts(s.probeLT, n)
	s.probeLE = resizeInts(s.probeLE, n)
}

func resizeInts(b []int, n int) []int {
	if cap(b) < n {
		return make([]int, n)
	}
	return b[:n]
}

// at is the j-th smallest difference of row i.
func (s *pairSelector) at(i, j int) float64 {
	return s.x[i] - s.y[len(s.y)-1-j]
}

// count fills lt[i] and le[i] with the number of entries of row i that are < p and
// <= p, in one staircase walk, and returns the totals.
func (s *pairSelector) count(p float64, lt, le []int) (nlt, nle int) {
	m := len(s.y)
	a, b := m, m
	for i, xi := range s.x {
		for a > 0 && !(xi-s.y[m-a] < p) {
			a--
		}
		for b > 0 && !(xi-s.y[m-b] <= p) {
			b--
		}
		lt[i], le[i] = a, b
		nlt += a
		nle += b
	}
	return nlt, nle
}

// kth returns the k-th smallest difference, k in 1..n·m.
//
// It searches the value axis: the count of differences <= v is one O(n+m) walk, and
// behaves like a smooth distribution function until few candidates remain, so
// interpolating the wanted rank between the bracket's counts narrows
// (lo, hi] in a few walks; when a probe removes too little, the next one is a sampled
// candidate instead. The last few candidates are gathered from each row's band and
// selected directly.
func (s *pairSelector) kth(k int) float64 {
	m := len(s.y)
	lo := s.x[0] - s.y[m-1] // the smallest difference
	hi := s.x[len(s.x)-1] - s.y[0]
	_, cLo := s.count(lo, s.probeLT, s.leLo)
	if k <= cLo {
		return lo
	}
	// Invariant: the answer is one of the cHi-cLo candidates in (lo, hi], the cLo
	// entries <= lo are below it.
	for i := range s.leHi {
		s.leHi[i] = m
	}
	cHi := len(s.x) * m
	limit := max(64, (len(s.x)+m)/4)
	bisect := false
	for round := 0; cHi-cLo > limit; round++ {
		var p float64
		if bisect {
			p = s.sampledPivot(k-cLo, cHi-cLo)
		} else {
			// Aim a little past the wanted rank, alternately below and above it, so
			// that both ends of the bracket move (plain regula falsi keeps one end and
			// crawls); when the counts are locally linear two probes leave ~2δ.
			delta := float64(cHi-cLo) / 32
			if round%2 == 1 {
				delta = -delta
			}
			p = lo + (hi-lo)*(float64(k-cLo)-0.5+delta)/float64(cHi-cLo)
		}
		if !(p > lo && p < hi) {
			p = lo + (hi-lo)/2
			if !(p > lo && p < hi) {
				break // lo and hi are adjacent floats: no value between them
			}
		}
		before := cHi - cLo
		plt, ple := s.count(p, s.probeLT, s.probeLE)
		switch {
		case k <= plt:
			// The answer is below p: entries equal to p leave with those above it.
			hi, cHi = p, plt
			s.leHi, s.probeLT = s.probeLT, s.leHi
		case k <= ple:
			return p // p is itself a difference, and the wanted one
		default:
			lo, cLo = p, ple
			s.leLo, s.probeLE = s.probeLE, s.leLo
		}
		bisect = 4*(cHi-cLo) > 3*before // under a quarter removed: interpolation is off
	}
	// Gather the candidates in (lo, hi]: columns [leLo[i], leHi[i]) of each row.
	s.cand = s.cand[:0]
	for i := range s.x {
		for j := s.leLo[i]; j < s.leHi[i]; j++ {
			s.cand = append(s.cand, s.at(i, j))
		}
	}
	return quickselect(s.cand, k-cLo-1)
}

// sampledPivot picks a candidate near rank r of the c in the bracket: it takes
// pivotSample candidates at evenly spaced positions of the bands, in one pass, and
// returns the one whose rank in that sample matches r. Where the differences are so
// peaked that interpolating values fails, ranks still shrink the bracket.
func (s *pairSelector) sampledPivot(r, c int) float64 {
	const pivotSample = 31
	var sample [pivotSample]float64
	next, q, seen := c/(2*pivotSample), 0, 0
	for i := range s.x {
		w := s.leHi[i] - s.leLo[i]
		for q < pivotSample && next < seen+w {
			sample[q] = s.at(i, s.leLo[i]+next-seen)
			q++
			next = (2*q + 1) * c / (2 * pivotSample)
		}
		seen += w
	}
	slices.Sort(sample[:q])
	return sample[min(q-1, r*q/c)]
}

// nextAfter returns the (k+1)-th smallest difference given v, the k-th: v again when it
// is tied, else the smallest entry above v.
func (s *pairSelector) nextAfter(v float64, k int) float64 {
	if _, le := s.count(v, s.probeLT, s.probeLE); le > k {
		return v
	}
	best := 0.0
	found := false
	for i := range s.x {
		if j := s.probeLE[i]; j < len(s.y) {
			if d := s.at(i, j); !found || d < best {
				best, found = d, true
			}
		}
	}
	return best
}

// quickselect returns the element of rank k (0-based) of a, reordering a. Median of three
// pivots and three-way partitioning keep ties and sorted input linear.
func quickselect(a []float64, k int) float64 {
	lo, hi := 0, len(a)-1
	for hi-lo > 16 {
		mid := int(uint(lo+hi) >> 1)
		p := median3(a[lo], a[mid], a[hi])
		// Dutch national flag: [lo,lt) < p, [lt,i) == p, (gt,hi] > p.
		lt, i, gt := lo, lo, hi
		for i <= gt {
			switch v := a[i]; {
			case v < p:
				a[lt], a[i] = a[i], a[lt]
				lt++
				i++
			case v > p:
				a[i], a[gt] = a[gt], a[i]
				gt--
			default:
				i++
			}
		}
		switch {
		case k < lt:
			hi = lt - 1
		case k > gt:
			lo = gt + 1
		default:
			return p
		}
	}
	slices.Sort(a[lo : hi+1])
	return a[k]
}

func median3(a, b, c float64) float64 {
	if a > b {
		a, b = b, a
	}
	if b > c {
		b = c
	}
	if a > b {
		return a
	}
	return b
}
