package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsContiguous(t *testing.T) {
	prevHi := uint64(0)
	for i := range numBuckets {
		lo, hi := bucketBounds(i)
		if i > 0 && lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d [%d,%d] maps to %d,%d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		prevHi = hi
	}
	if prevHi != math.MaxUint64 {
		t.Fatalf("last bucket ends at %d", prevHi)
	}
}

func TestQuantilesMatchSortedSamples(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var h histogram
	var xs []int64
	for range 100000 {
		// Log-normal-ish latencies from 50µs to tens of ms.
		v := int64(50e3 * math.Exp(rng.NormFloat64()*1.2+1))
		xs = append(xs, v)
		h.record(v)
	}
	slices.Sort(xs)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := xs[max(int(math.Ceil(q*float64(len(xs))))-1, 0)]
		got := h.quantile(q)
		if rel := math.Abs(float64(got)-float64(exact)) / float64(exact); rel > 0.01 {
			t.Errorf("q%.3f: got %v, exact %v (%.2f%% off)", q, got, time.Duration(exact), rel*100)
		}
	}
	var a, b histogram
	for i, x := range xs {
		if i%2 == 0 {
			a.record(x)
		} else {
			b.record(x)
		}
	}
	a.merge(&b)
	if a.n != h.n || a.min != h.min || a.max != h.max || a.counts != h.counts {
		t.Errorf("merged histogram differs from the whole")
	}
	var empty histogram
	if empty.quantile(0.5) != 0 || empty.mean() != 0 {
		t.Errorf("empty histogram")
	}
}
