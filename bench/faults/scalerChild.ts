// The scaler as the fault harness runs it: src/main.ts's configuration and start, with one change.
// Kafka clients dial the brokers' advertised addresses after bootstrap, which a TCP proxy in front
// of the bootstrap address never sees, so Kafka's sockets go through kafkajs's socket factory to
// the proxy named for their address in FAULTS_KAFKA_ROUTES ({"127.0.0.1:19094": 40123}).
import { connect } from 'node:net';
import type { ISocketFactory } from 'kafkajs';
import { loadConfig } from '../../src/config.ts';
import { defaultDrivers } from '../../src/sources/drivers.ts';
import { startScaler } from '../../src/server/server.ts';
import { KafkaDriver } from '../../src/sources/kafka.ts';
import { createLogger } from '../../src/telemetry/logger.ts';

const routes = JSON.parse(process.env.FAULTS_KAFKA_ROUTES ?? '{}') as Record<string, number>;

const socketFactory: ISocketFactory = ({ host, port, onConnect }) => {
  const proxyPort = routes[`${host}:${port}`];
  if (proxyPort === undefined) throw new Error(`no proxy route for kafka broker ${host}:${port}`);
  return connect({ host: '127.0.0.1', port: proxyPort }, onConnect);
};

const config = loadConfig();
const logger = createLogger(config.LOG_LEVEL);
const scaler = await startScaler(config, {
  logger,
  drivers: (options) => [
    ...defaultDrivers(options).filter((d) => d.kind !== 'kafka'),
    new KafkaDriver({ ...options, socketFactory }),
  ],
});
process.once('SIGTERM', () => {
  void scaler.stop().then(() => process.exit(0));
});
