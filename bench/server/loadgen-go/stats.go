package main

// Pure helpers, the same as bench/server/stats.ts: nearest-rank percentiles and the open-loop
// schedule (send k is due at start + k / rate whatever earlier answers did).

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"time"
)

// ms is a duration in milliseconds that encodes NaN as null, as JSON.stringify does.
type ms float64

func (v ms) MarshalJSON() ([]byte, error) {
	f := float64(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

var _ json.Marshaler = ms(0)

// percentile is the nearest-rank percentile (p in [0, 100]) of an ascending slice; NaN when empty.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	if p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[len(sorted)-1]
	}
	// The epsilon keeps float noise (99.9 / 100 * 1000 = 999.0000000000001) from moving the rank.
	rank := int(math.Ceil(p/100*float64(len(sorted)) - 1e-9))
	return sorted[max(0, rank-1)]
}

type latencySummary struct {
	Count int `json:"count"`
	P50   ms  `json:"p50Ms"`
	P99   ms  `json:"p99Ms"`
	P999  ms  `json:"p999Ms"`
	Max   ms  `json:"maxMs"`
	Mean  ms  `json:"meanMs"`
}

// summarize returns the percentiles of the samples that are not NaN (NaN marks "not sent").
func summarize(samples []float64) latencySummary {
	sorted := make([]float64, 0, len(samples))
	sum := 0.0
	for _, v := range samples {
		if !math.IsNaN(v) {
			sorted = append(sorted, v)
			sum += v
		}
	}
	sort.Float64s(sorted)
	s := latencySummary{
		Count: len(sorted),
		P50:   ms(percentile(sorted, 50)),
		P99:   ms(percentile(sorted, 99)),
		P999:  ms(percentile(sorted, 99.9)),
		Max:   ms(math.NaN()),
		Mean:  ms(math.NaN()),
	}
	if len(sorted) > 0 {
		s.Max = ms(sorted[len(sorted)-1])
		s.Mean = ms(sum / float64(len(sorted)))
	}
	return s
}

type openLoopSchedule struct {
	start         time.Time
	ratePerSecond float64
	total         int
}

func newOpenLoopSchedule(start time.Time, ratePerSecond float64, durationMs float64) openLoopSchedule {
	return openLoopSchedule{start: start, ratePerSecond: ratePerSecond, total: int(math.Floor(durationMs * ratePerSecond / 1000))}
}

// intended is the time send k is due.
func (s openLoopSchedule) intended(k int) time.Time {
	return s.start.Add(time.Duration(float64(k) * 1e9 / s.ratePerSecond))
}

// dueBy is how many sends should have gone out by now (capped at total).
func (s openLoopSchedule) dueBy(now time.Time) int {
	if now.Before(s.start) {
		return 0
	}
	n := int(math.Floor(now.Sub(s.start).Seconds()*s.ratePerSecond)) + 1
	return min(s.total, n)
}

func msBetween(from, to time.Time) float64 { return float64(to.Sub(from)) / 1e6 }
