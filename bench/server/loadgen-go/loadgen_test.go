package main

import (
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestPercentileIsNearestRank(t *testing.T) {
	sorted := make([]float64, 1000)
	for i := range sorted {
		sorted[i] = float64(i + 1)
	}
	for _, c := range []struct{ p, want float64 }{{50, 500}, {99, 990}, {99.9, 999}, {100, 1000}, {0, 1}} {
		if got := percentile(sorted, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if !math.IsNaN(percentile(nil, 50)) {
		t.Error("percentile of no samples should be NaN")
	}
}

func TestSummarizeSkipsUnsentSamples(t *testing.T) {
	s := summarize([]float64{3, math.NaN(), 1, 2})
	if s.Count != 3 || s.P50 != 2 || s.Max != 3 || s.Mean != 2 {
		t.Errorf("got %+v", s)
	}
	if b, _ := summarize(nil).P99.MarshalJSON(); string(b) != "null" {
		t.Errorf("NaN encodes as %s, want null", b)
	}
}

func TestScheduleDueAtFixedTimes(t *testing.T) {
	start := time.Unix(100, 0)
	s := newOpenLoopSchedule(start, 1000, 20) // one send per ms for 20 ms
	if s.total != 20 {
		t.Fatalf("total = %d", s.total)
	}
	if got := s.intended(3).Sub(start); got != 3*time.Millisecond {
		t.Errorf("intended(3) = start + %v", got)
	}
	for _, c := range []struct {
		at   time.Duration
		want int
	}{{-time.Millisecond, 0}, {0, 1}, {999 * time.Microsecond, 1}, {time.Millisecond, 2}, {time.Hour, 20}} {
		if got := s.dueBy(start.Add(c.at)); got != c.want {
			t.Errorf("dueBy(start+%v) = %d, want %d", c.at, got, c.want)
		}
	}
}

func TestScaledObjectRefWire(t *testing.T) {
	b := encodeScaledObjectRef("so-1", "bench", map[string]string{"b": "2", "a": "1"})
	var got []string
	err := fields(b, func(num protowire.Number, _ protowire.Type, value []byte, _ uint64) error {
		if num == 3 {
			return fields(value, func(_ protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
				got = append(got, string(v))
				return nil
			})
		}
		got = append(got, string(value))
		return nil
	})
	want := []string{"so-1", "bench", "a", "1", "b", "2"}
	if err != nil || len(got) != len(want) {
		t.Fatalf("got %v, %v", got, err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("field %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestDecodeAnswers(t *testing.T) {
	var mv []byte
	mv = protowire.AppendTag(mv, 1, protowire.BytesType)
	mv = protowire.AppendString(mv, metricName)
	mv = protowire.AppendTag(mv, 2, protowire.VarintType)
	mv = protowire.AppendVarint(mv, 7)
	mv = protowire.AppendTag(mv, 3, protowire.Fixed64Type)
	mv = protowire.AppendFixed64(mv, math.Float64bits(6.5))
	resp := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), mv)
	values, err := decodeGetMetricsResponse(resp)
	if err != nil || len(values) != 1 || values[0] != (metricValue{metricName, 7, 6.5}) {
		t.Errorf("got %+v, %v", values, err)
	}
	if _, err := decodeGetMetricsResponse(nil); err == nil {
		t.Error("an empty GetMetricsResponse should be refused")
	}
	if _, err := decodeGetMetricsResponse([]byte{0x0a, 0x05}); err == nil {
		t.Error("a truncated GetMetricsResponse should be refused")
	}
	active, err := decodeIsActiveResponse([]byte{0x08, 0x01})
	if err != nil || !active {
		t.Errorf("IsActive {result: true} decoded as %v, %v", active, err)
	}
	active, err = decodeIsActiveResponse(nil)
	if err != nil || active {
		t.Errorf("IsActive {} decoded as %v, %v", active, err)
	}
}
