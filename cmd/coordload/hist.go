package main

import (
	"math"
	"math/bits"
	"time"
)

// A histogram counts latencies (nanoseconds) in log-spaced buckets, as HDR
// histograms do: values below 128 ns are kept exactly, larger ones in 64
// sub-buckets per power of two, so any reported quantile is within 0.8% of
// a recorded value. It is not safe for concurrent use: each goroutine keeps
// its own and they are merged at the end.
type histogram struct {
	counts   [numBuckets]uint64
	n        uint64
	sum      float64
	min, max int64
}

const (
	subBits    = 7
	subCount   = 1 << subBits // exact values below this
	halfCount  = subCount / 2 // sub-buckets per power of two above it
	numBuckets = subCount + (64-subBits)*halfCount
)

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - subBits // >= 1
	top := v >> e                // in [halfCount, subCount)
	return subCount + (e-1)*halfCount + int(top-halfCount)
}

// bucketBounds returns the smallest and largest value of bucket i.
func bucketBounds(i int) (lo, hi uint64) {
	if i < subCount {
		return uint64(i), uint64(i)
	}
	k := i - subCount
	e := k/halfCount + 1
	top := uint64(k%halfCount + halfCount)
	return top << e, (top+1)<<e - 1
}

func (h *histogram) record(ns int64) {
	if ns < 0 {
		ns = 0
	}
	if h.n == 0 || ns < h.min {
		h.min = ns
	}
	if ns > h.max {
		h.max = ns
	}
	h.counts[bucketOf(uint64(ns))]++
	h.n++
	h.sum += float64(ns)
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
}

// quantile returns the value at quantile q (0..1): the middle of the bucket
// holding the ceil(q·n)-th smallest value, clamped to the recorded range.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketBounds(i)
			v := int64(lo + (hi-lo)/2)
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}
