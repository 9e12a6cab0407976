#!/usr/bin/env node
// A minimal inference worker: loads a (simulated) model, then consumes a RabbitMQ queue, one
// request per free slot, and acks each after a (simulated) service time. What matters for
// autoscaling is all here: a cold start before the first message, a bounded concurrency
// (prefetch), a readiness endpoint that turns ready only once the model is loaded, and a
// graceful stop that finishes in-flight requests on SIGTERM (scale-down) instead of dropping them.
//
// Environment:
//   RABBITMQ_URL          amqp://guest:guest@localhost:5672
//   QUEUE                 inference-requests
//   MODEL_LOAD_SECONDS    20     simulated model load (the coldStartSeconds of the ScaledObject)
//   SERVICE_MS            800    mean service time of one request (exponentially distributed)
//   CONCURRENCY           2      requests in flight per replica (GPU batch slots)
//   PORT                  8000   /healthz, /readyz
import http from 'node:http';
import os from 'node:os';
import amqp from 'amqplib';

const url = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@localhost:5672';
const queue = process.env.QUEUE ?? 'inference-requests';
const modelLoadSeconds = Number(process.env.MODEL_LOAD_SECONDS ?? 20);
const serviceMs = Number(process.env.SERVICE_MS ?? 800);
const concurrency = Number(process.env.CONCURRENCY ?? 2);
const port = Number(process.env.PORT ?? 8000);

const log = (msg, fields = {}) =>
  console.log(JSON.stringify({ time: new Date().toISOString(), worker: os.hostname(), msg, ...fields }));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** Exponential service time: a queue with realistic variance, mean serviceMs. */
const serviceTime = () => -Math.log(1 - Math.random()) * serviceMs;

let ready = false;
let served = 0;
let inFlight = 0;

const health = http.createServer((req, res) => {
  const ok = req.url === '/healthz' || (req.url === '/readyz' && ready);
  res.writeHead(ok ? 200 : 503).end(ok ? 'ok\n' : 'not ready\n');
});
health.listen(port);

log('loading model', { seconds: modelLoadSeconds });
await sleep(modelLoadSeconds * 1000);

const connection = await amqp.connect(url);
const channel = await connection.createChannel();
await channel.assertQueue(queue, { durable: true });
await channel.prefetch(concurrency);
ready = true;
log('model loaded, consuming', { queue, concurrency, serviceMs });

const { consumerTag } = await channel.consume(queue, async (message) => {
  if (message === null) return; // consumer cancelled by the broker
  inFlight++;
  await sleep(serviceTime()); // the "inference"
  channel.ack(message);
  inFlight--;
  served++;
});

const report = setInterval(() => log('progress', { served, inFlight }), 10_000);

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  ready = false;
  log('stopping: no new requests, finishing in-flight ones', { signal, inFlight });
  await channel.cancel(consumerTag);
  while (inFlight > 0) await sleep(100);
  clearInterval(report);
  await channel.close();
  await connection.close();
  health.close();
  log('stopped', { served });
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
