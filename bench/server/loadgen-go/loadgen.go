package main

// The gRPC side: one ClientConn per --connections (KEDA keeps one per scaler address, with
// round_robin over the addresses it resolves: one HTTP/2 connection for one address), keepalive
// off (grpc-go's default, as KEDA dials), calls through a pass-through codec.

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

const (
	service    = "/externalscaler.ExternalScaler/"
	metricName = "inference-desired-replicas"
	namespace  = "bench"
	// KEDA's HPA path gives GetMetrics and IsActive a 3 s deadline.
	deadline = 3 * time.Second
)

var streamDesc = &grpc.StreamDesc{StreamName: "StreamIsActive", ServerStreams: true}

// errBadAnswer marks an answer that is not the message the protocol promises.
var errBadAnswer = errors.New("bad answer")

type loadGenerator struct {
	conns          []*grpc.ClientConn
	streamCancels  []context.CancelFunc
	streamWG       sync.WaitGroup
	streamErrors   atomic.Int64
	streamMessages atomic.Int64
}

// encodedTrigger is trigger j of a spec, encoded once: the ScaledObjectRef (IsActive,
// GetMetricSpec, StreamIsActive) and the GetMetricsRequest around it.
type encodedTrigger struct {
	ref        []byte
	getMetrics []byte
}

// triggers mirrors triggerRef in bench/server/triggers.ts: trigger j reads queue j mod Q.
func triggers(spec triggerSpec) []encodedTrigger {
	out := make([]encodedTrigger, spec.Triggers)
	for j := range out {
		metadata := map[string]string{
			"rabbitmq.host":      spec.RabbitmqURL,
			"rabbitmq.queueName": spec.QueuePrefix + strconv.Itoa(j%max(1, spec.Queues)),
			"messagesPerReplica": "5",
		}
		for k, v := range spec.Extra {
			metadata[k] = v
		}
		ref := encodeScaledObjectRef(spec.NamePrefix+strconv.Itoa(j), namespace, metadata)
		out[j] = encodedTrigger{ref: ref, getMetrics: encodeGetMetricsRequest(ref, metricName)}
	}
	return out
}

func (lg *loadGenerator) connect(target string, connections int) error {
	lg.closeConns()
	for range connections {
		conn, err := grpc.NewClient(target,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})),
		)
		if err != nil {
			return err
		}
		conn.Connect()
		lg.conns = append(lg.conns, conn)
	}
	return nil
}

func (lg *loadGenerator) closeConns() {
	for _, c := range lg.conns {
		_ = c.Close()
	}
	lg.conns = nil
}

func (lg *loadGenerator) conn(k int) *grpc.ClientConn { return lg.conns[k%len(lg.conns)] }

// unary calls method with request and checks the answer's shape.
func unary(conn *grpc.ClientConn, method string, request []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var answer []byte
	if err := conn.Invoke(ctx, service+method, &request, &answer); err != nil {
		return err
	}
	var err error
	switch method {
	case "GetMetrics":
		var values []metricValue
		values, err = decodeGetMetricsResponse(answer)
		if err == nil && values[0].name != metricName {
			err = errors.New("GetMetrics answered for another metric")
		}
	case "IsActive":
		_, err = decodeIsActiveResponse(answer)
	}
	if err != nil {
		return errors.Join(errBadAnswer, err)
	}
	return nil
}

// codeName is grpc-js's name for an error's status (UNAVAILABLE, DEADLINE_EXCEEDED, ...).
func codeName(err error) string {
	if errors.Is(err, errBadAnswer) {
		return "BAD_ANSWER"
	}
	names := [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
		"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
		"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}
	code := status.Code(err)
	if int(code) < len(names) {
		return names[code]
	}
	return strconv.Itoa(int(code))
}

type registerResult struct {
	Triggers int     `json:"triggers"`
	Errors   int64   `json:"errors"`
	Ms       float64 `json:"ms"`
}

// register: GetMetricSpec then GetMetrics for every trigger, closed loop, `concurrency` in flight.
func (lg *loadGenerator) register(spec triggerSpec, concurrency int) registerResult {
	all := triggers(spec)
	started := time.Now()
	var next, errs atomic.Int64
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Go(func() {
			conn := lg.conn(w)
			for j := int(next.Add(1)) - 1; j < len(all); j = int(next.Add(1)) - 1 {
				if unary(conn, "GetMetricSpec", all[j].ref) != nil {
					errs.Add(1)
				}
				if unary(conn, "GetMetrics", all[j].getMetrics) != nil {
					errs.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return registerResult{Triggers: len(all), Errors: errs.Load(), Ms: msBetween(started, time.Now())}
}

type streamsResult struct {
	Opened   int     `json:"opened"`
	Answered int     `json:"answered"`
	Ms       float64 `json:"ms"`
}

// openStreams opens `count` StreamIsActive streams (stream k watches trigger k mod T) and
// returns when each sent its first answer (or failed, or 30 s passed).
func (lg *loadGenerator) openStreams(spec triggerSpec, count int) streamsResult {
	all := triggers(spec)
	started := time.Now()
	firsts := make(chan bool, count)
	for k := range count {
		ctx, cancel := context.WithCancel(context.Background())
		lg.streamCancels = append(lg.streamCancels, cancel)
		lg.streamWG.Go(func() { lg.watch(ctx, lg.conn(k), all[k%len(all)].ref, firsts) })
	}
	answered := 0
	timeout := time.After(30 * time.Second)
	for range count {
		select {
		case ok := <-firsts:
			if ok {
				answered++
			}
		case <-timeout:
			return streamsResult{Opened: count, Answered: answered, Ms: msBetween(started, time.Now())}
		}
	}
	return streamsResult{Opened: count, Answered: answered, Ms: msBetween(started, time.Now())}
}

// watch reads one stream until it ends, counting its answers; first gets one value.
func (lg *loadGenerator) watch(ctx context.Context, conn *grpc.ClientConn, ref []byte, first chan<- bool) {
	reported := false
	report := func(ok bool) {
		if !reported {
			reported = true
			first <- ok
		}
	}
	fail := func(err error) {
		report(false)
		if status.Code(err) != codes.Canceled && !errors.Is(err, context.Canceled) {
			lg.streamErrors.Add(1)
		}
	}
	stream, err := conn.NewStream(ctx, streamDesc, service+"StreamIsActive")
	if err == nil {
		err = stream.SendMsg(&ref)
	}
	if err == nil {
		err = stream.CloseSend()
	}
	if err != nil {
		fail(err)
		return
	}
	var answer []byte
	for {
		if err := stream.RecvMsg(&answer); err != nil {
			if err == io.EOF {
				report(false)
			} else {
				fail(err)
			}
			return
		}
		if _, err := decodeIsActiveResponse(answer); err != nil {
			lg.streamErrors.Add(1)
		}
		lg.streamMessages.Add(1)
		report(true)
	}
}

func (lg *loadGenerator) closeStreams() {
	for _, cancel := range lg.streamCancels {
		cancel()
	}
	lg.streamCancels = nil
	lg.streamWG.Wait()
}
