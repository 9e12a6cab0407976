package main

// The fixed-rate run, open loop: pair k (GetMetrics, then IsActive the moment it answers, as
// KEDA's GetMetricsAndActivity does) is due at a fixed time whatever earlier answers did, and
// latency counts from that intended time (no coordinated omission). One goroutine per pair, as
// loadgen.ts starts one promise per pair: at 1,000 pairs/s and a millisecond each, a handful run
// at once.

import (
	"math"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type runResult struct {
	OfferedRps      float64          `json:"offeredRps"`
	AchievedRps     ms               `json:"achievedRps"`
	Ok              int64            `json:"ok"`
	Errors          int64            `json:"errors"`
	ErrorCodes      map[string]int64 `json:"errorCodes"`
	Latency         latencySummary   `json:"latency"`
	SendLag         latencySummary   `json:"sendLag"`
	StreamErrors    int64            `json:"streamErrors"`
	StreamMessages  int64            `json:"streamMessages"`
	LoadgenCPUCores ms               `json:"loadgenCpuCores"`
	// The sender's own lateness waking for the next send (what loadgen.ts reports as event-loop
	// delay) and the longest stop-the-world GC pause.
	LoadgenLoopDelayP99Ms ms `json:"loadgenLoopDelayP99Ms"`
	LoadgenGcMaxMs        ms `json:"loadgenGcMaxMs"`
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sleepUntil sleeps with nanosleep: Go's timers wake through epoll, whose timeout is whole
// milliseconds, so a 0.5 ms wait would take 1 ms and every send would be late by up to that.
func sleepUntil(t time.Time) {
	for d := time.Until(t); d > 0; d = time.Until(t) {
		ts := syscall.NsecToTimespec(int64(d))
		_ = syscall.Nanosleep(&ts, nil)
	}
}

// gcMaxPause is the longest GC pause among the collections after `before` (of the last 256).
func gcMaxPause(before int64) time.Duration {
	var stats debug.GCStats
	debug.ReadGCStats(&stats)
	longest := time.Duration(0)
	for i := 0; i < int(stats.NumGC-before) && i < len(stats.Pause); i++ {
		longest = max(longest, stats.Pause[i])
	}
	return longest
}

func (lg *loadGenerator) run(spec triggerSpec, rate, durationMs float64) runResult {
	all := triggers(spec)
	schedule := newOpenLoopSchedule(time.Now().Add(5*time.Millisecond), rate/2, durationMs)
	latGetMetrics := make([]float64, schedule.total)
	latIsActive := make([]float64, schedule.total)
	lags := make([]float64, schedule.total)
	for k := range latIsActive {
		latIsActive[k] = math.NaN()
	}
	var okCount, errCount atomic.Int64
	var codesMu sync.Mutex
	errorCodes := map[string]int64{}
	fail := func(err error) {
		errCount.Add(1)
		codesMu.Lock()
		errorCodes[codeName(err)]++
		codesMu.Unlock()
	}
	var lastDone atomic.Int64 // ns since schedule.start
	streamErrorsBefore, streamMessagesBefore := lg.streamErrors.Load(), lg.streamMessages.Load()
	cpuBefore := cpuTime()
	var gcBefore debug.GCStats
	debug.ReadGCStats(&gcBefore)

	var wg sync.WaitGroup
	sendPair := func(k int, intended time.Time) {
		trigger := all[k%len(all)]
		conn := lg.conn(k)
		lags[k] = msBetween(intended, time.Now())
		err := unary(conn, "GetMetrics", trigger.getMetrics)
		done1 := time.Now()
		latGetMetrics[k] = msBetween(intended, done1)
		if err != nil {
			fail(err)
		} else {
			okCount.Add(1)
			err = unary(conn, "IsActive", trigger.ref)
			// IsActive goes out the moment GetMetrics answers: that is its intended time.
			latIsActive[k] = msBetween(done1, time.Now())
			if err != nil {
				fail(err)
			} else {
				okCount.Add(1)
			}
		}
		// Monotonic max of the finish times.
		doneNs := int64(time.Since(schedule.start))
		for prev := lastDone.Load(); doneNs > prev && !lastDone.CompareAndSwap(prev, doneNs); prev = lastDone.Load() {
		}
	}

	wakeLate := make([]float64, 0, schedule.total)
	sent := 0
	for sent < schedule.total {
		now := time.Now()
		for due := schedule.dueBy(now); sent < due; sent++ {
			wg.Add(1)
			go func(k int, intended time.Time) {
				defer wg.Done()
				sendPair(k, intended)
			}(sent, schedule.intended(sent))
		}
		if sent < schedule.total {
			next := schedule.intended(sent)
			sleepUntil(next)
			wakeLate = append(wakeLate, msBetween(next, time.Now()))
		}
	}
	wg.Wait()

	elapsedMs := float64(lastDone.Load()) / 1e6
	cpu := cpuTime() - cpuBefore
	return runResult{
		OfferedRps:            rate,
		AchievedRps:           ms(float64(okCount.Load()+errCount.Load()) / elapsedMs * 1000),
		Ok:                    okCount.Load(),
		Errors:                errCount.Load(),
		ErrorCodes:            errorCodes,
		Latency:               summarize(append(latGetMetrics, latIsActive...)),
		SendLag:               summarize(lags),
		StreamErrors:          lg.streamErrors.Load() - streamErrorsBefore,
		StreamMessages:        lg.streamMessages.Load() - streamMessagesBefore,
		LoadgenCPUCores:       ms(float64(cpu) / 1e6 / elapsedMs),
		LoadgenLoopDelayP99Ms: summarize(wakeLate).P99,
		LoadgenGcMaxMs:        ms(float64(gcMaxPause(gcBefore.NumGC)) / 1e6),
	}
}
