// Readiness of the test bed's RabbitMQ, asked with the project's own clients: an AMQP connection
// opens (amqplib) and the management API answers (fetch); the scaler reads queues through both.
// Usage: node scripts/probes/rabbitmq.mjs AMQP_URL MANAGEMENT_URL [TIMEOUT_MS]; prints the
// broker's version, exits 0 when ready.
import amqplib from 'amqplib';
import { fetchOk, probe } from './probe.mjs';

const [amqpUrl, managementUrl, limitArg] = process.argv.slice(2);

probe('rabbitmq', Number(limitArg ?? 5000), async (limit) => {
  const connection = await amqplib.connect(amqpUrl, { timeout: limit });
  await connection.close();
  const overview = await (await fetchOk(new URL('/api/overview', managementUrl), limit)).json();
  return `RabbitMQ ${overview.rabbitmq_version}`;
});
