// Shutdown during load (`npm run bench:shutdown`): prints what KEDA-like clients see when the
// scaler gets SIGTERM with streams open and calls in flight, a second SIGTERM, and a stop with the
// broker blackholed. See bench/shutdown/drill.ts and docs/reliability.md.
import { parseArgs } from 'node:util';
import { discoverServices } from '../../test/support/services.ts';
import { secondSigterm, sigtermBrokerBlackholed, sigtermDuringLoad } from './drill.ts';

// No flags: an unknown one is refused (it ran the drills before).
if (parseArgs({ options: { help: { type: 'boolean', short: 'h' } } }).values.help === true) {
  process.stdout.write(
    'npm run bench:shutdown: three SIGTERM drills against the scaler as a process (no flags; RabbitMQ from\n' +
      'RABBITMQ_URL or scripts/services.sh up rabbitmq). docs/reliability.md, "Shutdown under load".\n',
  );
  process.exit(0);
}

const amqpUrl = discoverServices().RABBITMQ_URL;
if (amqpUrl === undefined) throw new Error('RABBITMQ_URL is not set: run scripts/services.sh up rabbitmq, or set it');
const ms = (v: number | undefined) => (v === undefined ? 'never' : `${v.toFixed(0)} ms`);
const count = (xs: readonly { outcome: string }[]) =>
  Object.entries(xs.reduce<Record<string, number>>((m, x) => ({ ...m, [x.outcome]: (m[x.outcome] ?? 0) + 1 }), {}))
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');

const shutdownTimeoutMs = 10_000;
const load = await sigtermDuringLoad({ amqpUrl, streams: 100, inFlight: 20, shutdownTimeoutMs, brokerDelayMs: 600 });
const second = await secondSigterm(amqpUrl);
const blackholed = await sigtermBrokerBlackholed(amqpUrl, 3000);
process.stdout.write(
  [
    `SIGTERM with 100 StreamIsActive streams, a health Watch and 20 GetMetrics in flight on a broker 600 ms slow (SHUTDOWN_TIMEOUT_MS ${shutdownTimeoutMs}):`,
    `  health Watch sees NOT_SERVING      ${ms(load.notServingMs)} after SIGTERM (streams ended before it: ${load.streamsEndedBeforeNotServing})`,
    `  streams end                        ${Object.entries(load.streamEnds)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}; the last ${ms(load.lastStreamEndMs)} after SIGTERM`,
    `  health Watch ends                  ${load.watchEnd ?? 'no'} at ${ms(load.watchEndMs)}`,
    `  calls in flight                    ${load.inFlightAtSigterm} of ${load.inFlight.length} unanswered at SIGTERM; ${count(load.inFlight)}; the first answered ${ms(Math.min(...load.inFlight.map((c) => c.atMs)))}, the last ${ms(Math.max(...load.inFlight.map((c) => c.atMs)))} after SIGTERM`,
    `  a call sent after NOT_SERVING      ${load.afterNotServing?.outcome ?? '-'} at ${ms(load.afterNotServing?.atMs)}`,
    `  process exits                      code ${load.exitCode}, ${ms(load.exitMs)} after SIGTERM`,
    `second SIGTERM while the first stop waits on a call to a blackholed broker (SOURCE_TIMEOUT_MS 60000): still running 1 s after the first: ${second.stillRunningAfterFirst}; exits with code ${second.exitCode} ${ms(second.afterSecondMs)} after the second`,
    `SIGTERM with the broker connection blackholed (SHUTDOWN_TIMEOUT_MS 3000): exits with code ${blackholed.exitCode} after ${ms(blackholed.exitMs)}`,
    '',
  ].join('\n'),
);
process.exit(0);
