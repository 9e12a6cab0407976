package main

// The few externalscaler messages the load generator sends and reads, encoded by hand with
// protowire (no protoc, no generated code), and a gRPC codec that passes those bytes through.

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"google.golang.org/protobuf/encoding/protowire"
)

// rawCodec sends a *[]byte as is and hands the received bytes back in a *[]byte.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.(*[]byte); ok {
		return *b, nil
	}
	return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	// gRPC may reuse data after Unmarshal returns.
	*b = append((*b)[:0], data...)
	return nil
}

// Name "proto" keeps the content-type application/grpc+proto, as a generated client sends.
func (rawCodec) Name() string { return "proto" }

// ScaledObjectRef { string name = 1; string namespace = 2; map<string, string> scalerMetadata = 3; }
func encodeScaledObjectRef(name, namespace string, metadata map[string]string) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, namespace)
	keys := make([]string, 0, len(metadata))
	for k := range metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var entry []byte
		entry = protowire.AppendTag(entry, 1, protowire.BytesType)
		entry = protowire.AppendString(entry, k)
		entry = protowire.AppendTag(entry, 2, protowire.BytesType)
		entry = protowire.AppendString(entry, metadata[k])
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, entry)
	}
	return b
}

// GetMetricsRequest { ScaledObjectRef scaledObjectRef = 1; string metricName = 2; }
func encodeGetMetricsRequest(ref []byte, metricName string) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, ref)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, metricName)
	return b
}

// fields calls fn for each field of a message (varint: a varint's value or a fixed64's bits),
// failing on malformed input.
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, value []byte, varint uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var value []byte
		var varint uint64
		switch typ {
		case protowire.VarintType:
			varint, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			varint, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			value, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(num, typ, value, varint); err != nil {
			return err
		}
	}
	return nil
}

// IsActiveResponse { bool result = 1; } (absent means false).
func decodeIsActiveResponse(b []byte) (bool, error) {
	result := false
	err := fields(b, func(num protowire.Number, typ protowire.Type, _ []byte, varint uint64) error {
		if num == 1 && typ == protowire.VarintType {
			result = varint != 0
		}
		return nil
	})
	return result, err
}

// MetricValue { string metricName = 1; int64 metricValue = 2; double metricValueFloat = 3; }
type metricValue struct {
	name       string
	valueInt   int64
	valueFloat float64
}

var errNoMetricValues = errors.New("GetMetricsResponse has no metricValues")

// GetMetricsResponse { repeated MetricValue metricValues = 1; }
func decodeGetMetricsResponse(b []byte) ([]metricValue, error) {
	var values []metricValue
	err := fields(b, func(num protowire.Number, typ protowire.Type, value []byte, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		var mv metricValue
		err := fields(value, func(num protowire.Number, typ protowire.Type, value []byte, varint uint64) error {
			switch {
			case num == 1 && typ == protowire.BytesType:
				mv.name = string(value)
			case num == 2 && typ == protowire.VarintType:
				mv.valueInt = int64(varint)
			case num == 3 && typ == protowire.Fixed64Type:
				mv.valueFloat = math.Float64frombits(varint)
			}
			return nil
		})
		if err != nil {
			return err
		}
		values = append(values, mv)
		return nil
	})
	if err == nil && len(values) == 0 {
		err = errNoMetricValues
	}
	return values, err
}
