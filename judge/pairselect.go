package judge

import "slices"

// pairSelector finds order statistics of the n·m pairwise differences x[i] − y[j] of two
// sorted samples without building them. The differences form a matrix whose rows (fixed
// i, y taken from largest to smallest) and columns both ascend, so the count of entries
// below a pivot is one staircase walk of O(n+m). Each round samples the remaining
// candidates, brackets the wanted rank between two sample quantiles (as Floyd and Rivest
// do for plain selection), and keeps only the band between them; a handful of rounds
// leave few enough candidates to select directly. Memory is O(n+m).
//
// Every difference is computed by the same expression, x[i] - y[m-1-j], so the values
// selected are bit for bit the entries of R's sort(outer(x, y, "-")).
type pairSelector struct {
	x, y   []float64
	lo, hi []int // active band of row i: columns [lo[i], hi[i])
	// per-row counts of entries below (lt) and at or below (le) the lower (A) and
	// upper (B) pivots
	ltA, leA, ltB, leB []int
	prefix             []int // running total of band widths, for sampling
	cand               []float64
	rng                uint64
}

const (
	selectDirectLimit = 1 << 15 // gather and select directly below this many candidates
	selectSample      = 1 << 12 // candidates sampled per round
	selectSlack       = 128     // 2·sqrt(selectSample): sample ranks either side of the target
)

func (s *pairSelector) reset(x, y []float64) {
	s.x, s.y = x, y
	n := len(x)
	s.lo = resizeInts(s.lo, n)
	s.hi = resizeInts(s.hi, n)
	s.ltA = resizeInts(s.ltA, n)
	s.leA = resizeInts(s.leA, n)
	s.ltB = resizeInts(s.ltB, n)
	s.leB = resizeInts(s.leB, n)
	s.prefix = resizeInts(s.prefix, n+1)
	s.rng = 0x9e3779b97f4a7c15 // fixed seed: results never depend on it, only the path does
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

func (s *pairSelector) next() uint64 {
	// xorshift64*: a few nanoseconds, no allocation, no shared state.
	s.rng ^= s.rng >> 12
	s.rng ^= s.rng << 25
	s.rng ^= s.rng >> 27
	return s.rng * 2685821657736338717
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
func (s *pairSelector) kth(k int) float64 {
	m := len(s.y)
	for i := range s.lo {
		s.lo[i], s.hi[i] = 0, m
	}
	for {
		c, below := 0, 0
		s.prefix[0] = 0
		for i := range s.lo {
			below += s.lo[i]
			c += s.hi[i] - s.lo[i]
			s.prefix[i+1] = c
		}
		r := k - below // rank of the answer among the candidates, 1..c
		if c <= selectDirectLimit {
			return s.direct(r)
		}
		// Sample candidates uniformly and take the sample quantiles either side of r.
		s.cand = s.cand[:0]
		for range selectSample {
			t := int(s.next() % uint64(c))
			i := searchPrefix(s.prefix, t)
			s.cand = append(s.cand, s.at(i, s.lo[i]+t-s.prefix[i]))
		}
		slices.Sort(s.cand)
		pos := int(float64(r) / float64(c) * float64(selectSample))
		pa := s.cand[max(pos-selectSlack, 0)]
		pb := s.cand[min(pos+selectSlack, selectSample-1)]

		ltA, leA := s.count(pa, s.ltA, s.leA)
		switch {
		case k <= ltA: // below pa: drop every column from pa up
			for i := range s.hi {
				s.hi[i] = max(min(s.hi[i], s.ltA[i]), s.lo[i])
			}
			continue
		case k <= leA:
			return pa
		}
		ltB, leB := s.count(pb, s.ltB, s.leB)
		switch {
		case k > leB: // above pb
			for i := range s.lo {
				s.lo[i] = min(max(s.lo[i], s.leB[i]), s.hi[i])
			}
		case k > ltB:
			return pb
		default: // strictly between pa and pb; both pivots leave, so every round shrinks
			for i := range s.lo {
				s.lo[i] = max(s.lo[i], s.leA[i])
				s.hi[i] = max(min(s.hi[i], s.ltB[i]), s.lo[i])
			}
		}
	}
}

// direct gathers the remaining candidates and selects the r-th smallest of them.
func (s *pairSelector) direct(r int) float64 {
	s.cand = s.cand[:0]
	for i := range s.lo {
		for j := s.lo[i]; j < s.hi[i]; j++ {
			s.cand = append(s.cand, s.at(i, j))
		}
	}
	return quickselect(s.cand, r-1)
}

// nextAfter returns the (k+1)-th smallest difference given v, the k-th: v again when it
// is tied, else the smallest entry above v.
func (s *pairSelector) nextAfter(v float64, k int) float64 {
	if _, le := s.count(v, s.ltB, s.leB); le > k {
		return v
	}
	best := 0.0
	found := false
	for i := range s.x {
		if j := s.leB[i]; j < len(s.y) {
			if d := s.at(i, j); !found || d < best {
				best, found = d, true
			}
		}
	}
	return best
}

// searchPrefix finds the row i with prefix[i] <= t < prefix[i+1].
func searchPrefix(prefix []int, t int) int {
	lo, hi := 0, len(prefix)-1
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if prefix[mid] <= t {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
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
