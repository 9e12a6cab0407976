#!/usr/bin/env node
// Demo load: bursts of inference requests into a RabbitMQ queue, with quiet gaps between them,
// so the scaler has something to wake for, to scale out for, and to go idle after.
//
// Environment:
//   RABBITMQ_URL          amqp://guest:guest@localhost:5672
//   QUEUE                 inference-requests
//   BURST_SIZE            120    requests per burst
//   BURST_RATE            40     requests per second within a burst
//   GAP_SECONDS           90     quiet time between bursts
//   BURSTS                0      number of bursts, 0 = forever
import amqp from 'amqplib';

const url = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@localhost:5672';
const queue = process.env.QUEUE ?? 'inference-requests';
const burstSize = Number(process.env.BURST_SIZE ?? 120);
const burstRate = Number(process.env.BURST_RATE ?? 40);
const gapSeconds = Number(process.env.GAP_SECONDS ?? 90);
const bursts = Number(process.env.BURSTS ?? 0);

const log = (msg, fields = {}) => console.log(JSON.stringify({ time: new Date().toISOString(), msg, ...fields }));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const connection = await amqp.connect(url);
const channel = await connection.createConfirmChannel();
await channel.assertQueue(queue, { durable: true });
process.on('SIGTERM', () => connection.close().finally(() => process.exit(0)));
process.on('SIGINT', () => connection.close().finally(() => process.exit(0)));

for (let burst = 1; bursts === 0 || burst <= bursts; burst++) {
  log('burst', { burst, size: burstSize, ratePerSecond: burstRate, queue });
  for (let i = 0; i < burstSize; i++) {
    const body = { id: `${burst}-${i}`, prompt: 'Summarise this ticket.', sentAt: Date.now() };
    channel.sendToQueue(queue, Buffer.from(JSON.stringify(body)), { persistent: true, contentType: 'application/json' });
    await sleep(1000 / burstRate);
  }
  await channel.waitForConfirms();
  log('quiet', { seconds: gapSeconds });
  await sleep(gapSeconds * 1000);
}
await connection.close();
