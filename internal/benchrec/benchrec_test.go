package benchrec

import (
	"slices"
	"testing"
)

func TestMedian(t *testing.T) {
	type round struct{ fig, limit float64 }
	ratio := func(r round) float64 { return r.fig / r.limit }
	rounds := []round{{90, 100}, {30, 100}, {60, 100}}
	before := slices.Clone(rounds)
	if got := MedianBy(rounds, ratio); got != (round{60, 100}) {
		t.Errorf("MedianBy = %v, want {60 100}", got)
	}
	if !slices.Equal(rounds, before) {
		t.Errorf("MedianBy reordered its rounds: %v, was %v", rounds, before)
	}
	if got := MedianOf(rounds, func(r round) float64 { return r.fig }); got != 60 {
		t.Errorf("MedianOf = %v, want 60", got)
	}
	for _, c := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{7}, 7},
		{[]float64{3, 1}, 3}, // the upper middle of an even count
		{[]float64{4, 1, 3, 2}, 3},
		{[]float64{5, 9, 1, 9, 2}, 5},
	} {
		if got := Median(c.xs); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.xs, got, c.want)
		}
	}
}
