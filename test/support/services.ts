// Where the real services for integration tests are: environment variables, or the file that
// `scripts/services.sh up` writes. Never a mock: a missing service fails the run with directions.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const SERVICE_KEYS = [
  'RABBITMQ_URL',
  'RABBITMQ_MANAGEMENT_URL',
  'KAFKA_BROKERS',
  'SQS_ENDPOINT',
  'PROMETHEUS_URL',
  'DCGM_EXPORTER_URL',
  'STATE_STORE_URL',
] as const;
/** Read when present, not required: the tests that use them fail with directions when absent. */
const OPTIONAL_SERVICE_KEYS = [
  'KAFKA_SASL_BROKERS',
  'KAFKA_SASL_USERNAME',
  'KAFKA_SASL_PASSWORD',
  'KAFKA_TLS_BROKERS',
  'KAFKA_TLS_CA_FILE',
  'KAFKA_TLS_CLIENT_CERT_FILE',
  'KAFKA_TLS_CLIENT_KEY_FILE',
  'RABBITMQ_TLS_URL',
  'RABBITMQ_TLS_MANAGEMENT_URL',
  'RABBITMQ_TLS_CA_FILE',
] as const;
type OptionalServiceKey = (typeof OPTIONAL_SERVICE_KEYS)[number];
type ServiceKey = (typeof SERVICE_KEYS)[number] | OptionalServiceKey;
export type ServiceEnv = Partial<Record<ServiceKey, string>>;

/**
 * A service's optional listeners (the keys starting with `prefix`), as a getter; fails with
 * directions when `scripts/services.sh up SERVICE` has not written them (`what`: what is missing).
 */
export function optionalListeners(
  services: ServiceEnv,
  prefix: string,
  service: string,
  what: string,
): (key: OptionalServiceKey) => string {
  const missing = OPTIONAL_SERVICE_KEYS.filter((k) => k.startsWith(prefix) && services[k] === undefined);
  if (missing.length > 0) {
    throw new Error(
      `missing ${missing.join(', ')}: the test ${service} has no ${what}. Run \`scripts/services.sh up ${service.toLowerCase()}\` ` +
        '(it restarts one started with an older configuration), or set these variables',
    );
  }
  return (key) => services[key]!;
}

const servicesEnvFile = fileURLToPath(new URL('../../.services/env', import.meta.url));

function parseEnvLines(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** Services from the environment first, then from .services/env. */
export function discoverServices(env: Readonly<Record<string, string | undefined>> = process.env): ServiceEnv {
  const file = process.env.SERVICES_DIR ? `${process.env.SERVICES_DIR}/env` : servicesEnvFile;
  const fromFile = existsSync(file) ? parseEnvLines(readFileSync(file, 'utf8')) : {};
  const out: ServiceEnv = {};
  for (const key of [...SERVICE_KEYS, ...OPTIONAL_SERVICE_KEYS]) {
    const value = env[key] ?? fromFile[key];
    if (value) out[key] = value;
  }
  return out;
}

export const HOW_TO_GET_SERVICES =
  'integration tests need real services: run `scripts/services.sh up` (installs and starts RabbitMQ, Kafka, ' +
  'an SQS-compatible server, Prometheus and Redis natively; it needs Debian or Ubuntu with apt, Java with Maven, Python), ' +
  'or set RABBITMQ_URL, RABBITMQ_MANAGEMENT_URL, KAFKA_BROKERS, SQS_ENDPOINT, PROMETHEUS_URL, DCGM_EXPORTER_URL and STATE_STORE_URL';
