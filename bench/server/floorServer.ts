// The floor: a bare grpc-js server on the same proto that answers constants, no cache, no model,
// no metrics. Run as its own process by bench/server/main.ts; prints {"grpcPort": N} when ready.
import * as grpc from '@grpc/grpc-js';
import { externalScalerService } from '../../src/server/protocol.ts';

// Channelz off, as in the scaler: the floor is the cheapest grpc-js server, not a default one.
const server = new grpc.Server({ 'grpc.enable_channelz': 0 });
const streams = new Set<grpc.ServerWritableStream<unknown, unknown>>();

server.addService(externalScalerService, {
  IsActive: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
    callback(null, { result: false }),
  GetMetricSpec: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
    callback(null, { metricSpecs: [{ metricName: 'inference-desired-replicas', targetSize: 1, targetSizeFloat: 1 }] }),
  GetMetrics: (call: grpc.ServerUnaryCall<{ metricName: string }, unknown>, callback: grpc.sendUnaryData<unknown>) =>
    callback(null, { metricValues: [{ metricName: call.request.metricName, metricValue: 1, metricValueFloat: 1 }] }),
  StreamIsActive: (call: grpc.ServerWritableStream<unknown, unknown>) => {
    streams.add(call);
    call.on('cancelled', () => streams.delete(call));
    call.write({ result: false });
  },
  StreamMetricSpec: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
});

server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`${JSON.stringify({ grpcPort: port })}\n`);
});

process.on('SIGTERM', () => {
  for (const call of streams) call.end();
  server.forceShutdown();
  process.exit(0);
});
