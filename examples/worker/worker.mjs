#!/usr/bin/env node
// A minimal inference worker: loads a (simulated) model, then consumes a RabbitMQ queue, one
// request per free slot, and acks each after a (simulated) service time. What matters for
// autoscaling is all here: a cold start before the first message, a bounded concurrency
// (prefetch), a readiness endpoint that turns ready only once the model is loaded and a consumer
// is on the queue, and a graceful stop that finishes in-flight requests on SIGTERM (scale-down)
// instead of dropping them. What a production worker needs besides: a broker that restarts or
// cancels the consumer is reconnected to, keeping the loaded model; a request that fails is
// requeued once, then dropped (or dead-lettered, where the queue has a dead-letter exchange).
//
// Environment:
//   RABBITMQ_URL          amqp://guest:guest@localhost:5672
//   QUEUE                 inference-requests
//   MODEL_LOAD_SECONDS    20     simulated model load (the coldStartSeconds of the ScaledObject)
//   SERVICE_MS            800    mean service time of one request (exponentially distributed)
//   CONCURRENCY           2      requests in flight per replica (GPU batch slots), an integer >= 1
//   PORT                  8000   /healthz, /readyz
// A request whose body is {"fail":true} fails its simulated inference (to try the failure path).

// The signal handlers first, before a module loads: node as PID 1 (a container's) drops a signal
// it has no handler for, and a replica given back while its model loads must go at once.
let stopping = false;
let stop = (signal) => {
  stopping = true;
  console.log(JSON.stringify({ time: new Date().toISOString(), msg: 'stopping before consuming: exiting', signal }));
  process.exit(0);
};
process.on('SIGTERM', (signal) => stop(signal));
process.on('SIGINT', (signal) => stop(signal));

const { default: http } = await import('node:http');
const { default: os } = await import('node:os');
const { default: amqp } = await import('amqplib');

/** A setting that must be a number: refused at start, before the model loads, else the worker would misbehave later. */
function setting(name, fallback, valid, what) {
  const raw = process.env[name] ?? String(fallback);
  const value = Number(raw);
  if (raw.trim() === '' || !valid(value)) {
    console.error(`${name}: got ${JSON.stringify(raw)}; want ${what}`);
    process.exit(2);
  }
  return value;
}
const url = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@localhost:5672';
const queue = process.env.QUEUE ?? 'inference-requests';
const modelLoadSeconds = setting('MODEL_LOAD_SECONDS', 20, (n) => n >= 0, 'a number of seconds >= 0');
const serviceMs = setting('SERVICE_MS', 800, (n) => n >= 0, 'a number of milliseconds >= 0');
// Prefetch 0 would be no limit at all: the worker would take the whole queue at once.
const concurrency = setting('CONCURRENCY', 2, (n) => Number.isInteger(n) && n >= 1, 'an integer >= 1');
const port = setting('PORT', 8000, (n) => Number.isInteger(n) && n > 0 && n < 65536, 'a port');

const log = (msg, fields = {}) =>
  console.log(JSON.stringify({ time: new Date().toISOString(), worker: os.hostname(), msg, ...fields }));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** Exponential service time: a queue with realistic variance, mean serviceMs. */
const serviceTime = () => -Math.log(1 - Math.random()) * serviceMs;

let loaded = false;
let consuming = false;
let served = 0;
let failed = 0;
let inFlight = 0;
/** The connection and channel consumed from; replaced after the broker closes them. */
let session;

// Ready while the model is loaded and a consumer is on the queue: a worker that lost its broker
// is taken out of the Service and counts as not ready for the ReplicaSet's scale-down order.
const health = http.createServer((req, res) => {
  const ok = req.url === '/healthz' || (req.url === '/readyz' && loaded && consuming);
  res.writeHead(ok ? 200 : 503).end(ok ? 'ok\n' : 'not ready\n');
});
health.listen(port);

log('loading model', { seconds: modelLoadSeconds });
await sleep(modelLoadSeconds * 1000);
loaded = true;

/** One request: the "inference", then ack; a failure is requeued once, then dropped. */
async function handle(channel, message) {
  inFlight++;
  let ok = true;
  try {
    await sleep(serviceTime());
    if (message.content.toString() === '{"fail":true}') throw new Error('simulated inference failure');
  } catch (err) {
    ok = false;
    failed++;
    log('request failed', { err: String(err), redelivered: message.fields.redelivered });
  }
  try {
    if (ok) channel.ack(message);
    else channel.nack(message, false, !message.fields.redelivered);
    if (ok) served++;
  } catch {
    // The channel went with the broker: the broker redelivers the message itself.
  } finally {
    inFlight--;
  }
}

/** Connects and consumes until the broker closes the session, or a stop comes; then closes it. */
async function consume() {
  const connection = await amqp.connect(url);
  const lost = new Promise((resolve) => connection.on('close', resolve));
  connection.on('error', (err) => log('broker connection error', { err: String(err) }));
  try {
    const channel = await connection.createChannel();
    channel.on('error', (err) => log('broker channel error', { err: String(err) }));
    channel.on('close', () => connection.close().catch(() => {}));
    await channel.assertQueue(queue, { durable: true });
    await channel.prefetch(concurrency);
    if (stopping) return;
    const { consumerTag } = await channel.consume(queue, (message) => {
      // The broker cancelled the consumer (its queue moved or was deleted): start over.
      if (message === null) {
        log('consumer cancelled by the broker');
        connection.close().catch(() => {});
        return;
      }
      void handle(channel, message);
    });
    session = { channel, consumerTag };
    if (stopping) return;
    consuming = true;
    log('consuming', { queue, concurrency, serviceMs });
    await lost;
  } finally {
    consuming = false;
    session = undefined;
    // A setup that failed (the queue declared otherwise, no permission) leaves its connection open.
    await connection.close().catch(() => {});
  }
}

const report = setInterval(() => log('progress', { served, failed, inFlight, consuming }), 10_000);

stop = async (signal) => {
  if (stopping) return;
  stopping = true;
  loaded = false;
  log('stopping: no new requests, finishing in-flight ones', { signal, inFlight });
  // A session being set up sees the stop itself, and closes without consuming.
  await session?.channel.cancel(session.consumerTag).catch(() => {});
  while (inFlight > 0) await sleep(100);
  clearInterval(report);
  health.close();
  log('stopped', { served, failed });
  process.exit(0);
};

// The model stays loaded across broker restarts: connect again, backing off up to 30 s (from 1 s
// again once a session lasted a minute). What the lost session held is redelivered by the broker:
// it is let finish first, so the GPU never runs more than CONCURRENCY requests.
for (let attempt = 0; !stopping;) {
  const startedMs = Date.now();
  try {
    await consume();
  } catch (err) {
    log('cannot consume', { err: String(err) });
  }
  if (Date.now() - startedMs > 60_000) attempt = 0;
  while (inFlight > 0 && !stopping) await sleep(100);
  const waitS = Math.min(30, 2 ** attempt++);
  if (!stopping) log('connecting again', { inSeconds: waitS });
  if (!stopping) await sleep(waitS * 1000);
}
