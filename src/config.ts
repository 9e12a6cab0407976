// The scaler's own configuration: environment variables, plus an optional file (YAML or JSON)
// with connection profiles. Validated once at start-up; a bad value stops the process with a
// message naming the variable.
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { clip, errorMessage, redact } from './errors.ts';
import { StoreUrlError, parseStoreUrl } from './state/address.ts';
import { type SourceKind, sourceFields, sourceKinds } from './trigger/fields.ts';
import { profileIssues } from './trigger/schema.ts';
import type { ConnectionProfiles } from './trigger/types.ts';

/**
 * A whole number from an environment variable. "" and blanks are refused, not read as 0 (as
 * z.coerce would: GRPC_PORT="" bound a random port), and so are signs, decimals and exponents.
 */
const wholeNumber = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, { message: `allowed: a whole number from ${min} to ${max}` })
    .transform(Number)
    .pipe(
      z
        .number()
        .min(min, { message: `allowed: a whole number from ${min} to ${max}` })
        .max(max, { message: `allowed: a whole number from ${min} to ${max}` }),
    );
const port = wholeNumber(0, 65535);
const positiveMs = wholeNumber(1, 2 ** 31 - 1);

/** STATE_RETENTION_MS by default: a day, past a night's maintenance window. */
export const DEFAULT_STATE_RETENTION_MS = 24 * 60 * 60_000;

/** An environment flag: "true" or "false", any case. */
function flag(fallback: 'true' | 'false') {
  return z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(['true', 'false'], { error: 'allowed: true or false' }))
    .default(fallback)
    .transform((v) => v === 'true');
}

/**
 * Every address of the pod: `::` where the host has IPv6 (Linux then takes IPv4 on it too), else
 * `0.0.0.0`. Found by review: `0.0.0.0` alone left an IPv6-only cluster's kubelet probes and KEDA
 * without an answer, the pod never ready.
 */
export function defaultBindAddress(interfaces = networkInterfaces()): string {
  const ipv6 = Object.values(interfaces).some((addresses) => addresses?.some((a) => a.family === 'IPv6'));
  return ipv6 ? '::' : '0.0.0.0';
}

/** A variable that may not be set empty (a Helm template with nothing to put there): says what goes there. */
function filled(allowed: string) {
  return z.string().min(1, { error: `empty; allowed: ${allowed}` });
}

const envSchema = z.object({
  GRPC_PORT: port.default(9090),
  METRICS_PORT: port.default(8080),
  /** Plaintext port serving only grpc.health.v1 (for kubelet probes when the main port uses TLS); 0 = none. */
  HEALTH_PORT: port.default(0),
  // An IPv6 address as URLs write it ([::1]) is taken bare (found by review: it listened on "[[::1]]").
  // Blanks or `[]` are empty once trimmed and unbracketed: refused here, not at the bind (found by review).
  BIND_ADDRESS: z
    .string()
    .transform((address) => address.trim().replace(/^\[(.*)\]$/, '$1'))
    .pipe(filled('an address to listen on (::, 0.0.0.0, 127.0.0.1)'))
    .default(defaultBindAddress),
  // Words in any case (DEBUG, False), as trigger metadata takes them.
  LOG_LEVEL: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(
      z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], {
        error: 'allowed: trace, debug, info, warn, error, fatal or silent',
      }),
    )
    .default('info'),
  CACHE_TTL_MS: positiveMs.default(1000),
  SOURCE_TIMEOUT_MS: positiveMs.default(2000),
  STREAM_INTERVAL_MS: positiveMs.default(1000),
  SHUTDOWN_TIMEOUT_MS: positiveMs.default(10_000),
  GRPC_MAX_CONNECTION_AGE_MS: positiveMs.default(5 * 60_000),
  /**
   * Largest request message accepted; a larger one is refused with RESOURCE_EXHAUSTED from its
   * 5-byte length prefix, before it is buffered. A real ScaledObjectRef is a few KB; grpc's own
   * default (4 MiB) lets a client park megabytes per call.
   */
  GRPC_MAX_RECEIVE_MESSAGE_BYTES: wholeNumber(1024, 4 * 1024 * 1024).default(256 * 1024),
  /**
   * Server streams (StreamIsActive, StreamMetricSpec) held open at once, over all clients; one more
   * is refused with RESOURCE_EXHAUSTED. Each costs heap (docs/reliability.md, 'Abuse'): the
   * default keeps 5,000 of them well inside the chart's heap.
   */
  GRPC_MAX_OPEN_STREAMS: wholeNumber(1, 2 ** 31 - 1).default(5000),
  /**
   * The event loop's busy share above which new source reads wait for room (loopAdmission.ts): a
   * burst of first-seen triggers then cannot hold up cached answers, health and scrapes. 1 starts
   * every read at once.
   */
  LOOP_TARGET_UTILIZATION: z
    .string()
    .trim()
    // Exponents too: Helm's toString renders 0.00001 as "1e-05".
    .regex(/^(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i, { message: 'allowed: a number above 0 and at most 1' })
    .transform(Number)
    .pipe(
      z
        .number()
        .gt(0, { message: 'allowed: a number above 0 and at most 1' })
        .max(1, { message: 'allowed: a number above 0 and at most 1' }),
    )
    .default(0.5),
  /**
   * Per-trigger metric families (backlog, desired replicas, ... per ScaledObject trigger). At
   * 10,000 triggers a scrape renders some 60,000 series; "false" leaves them out (/explain still
   * shows every trigger).
   */
  TRIGGER_METRICS: flag('true'),
  TLS_CERT_FILE: filled("a PEM certificate file's path").optional(),
  TLS_KEY_FILE: filled("a PEM private key file's path").optional(),
  /** CA that client certificates must chain to; setting it turns on mutual TLS. */
  TLS_CLIENT_CA_FILE: filled("a PEM CA file's path").optional(),
  CONFIG_FILE: filled("a YAML file's path, or unset").optional(),
  /**
   * Where replicas share learned state: redis://[user@]host:port[/db] or rediss://... (TLS), Redis
   * or Valkey. Unset: state stays in this process (one replica). Never logged with its password.
   */
  STATE_STORE_URL: filled('a redis:// or rediss:// URL, or unset (in memory)').optional(),
  /** The store's password (from a Secret); it takes the place of one in STATE_STORE_URL. */
  STATE_STORE_PASSWORD: filled('a password, or unset').optional(),
  /** PEM file of the CA that the store's certificate chains to (rediss://); the system's roots when unset. */
  STATE_STORE_TLS_CA_FILE: filled("a PEM CA file's path, or unset").optional(),
  /**
   * "true": STATE_STORE_URL is one node of a Redis or Valkey cluster (cluster mode: ElastiCache
   * or MemoryDB with cluster mode on, ElastiCache Serverless), found from there.
   */
  STATE_STORE_CLUSTER: flag('false'),
  /**
   * A Sentinel-managed store: the master group's name, STATE_STORE_URL then naming a Sentinel
   * (the others are found from it) and the scaler following the master it reports.
   */
  STATE_STORE_SENTINEL_MASTER: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,128}$/, 'a Sentinel master group name: letters, digits, ".", "_" or "-", at most 128')
    .optional(),
  /** The Sentinels' password (from a Secret), where they have one of their own. */
  STATE_STORE_SENTINEL_PASSWORD: filled('a password, or unset').optional(),
  /**
   * How long what a trigger learned is kept after KEDA last asked about it (a paused ScaledObject,
   * every scaler replica down): in this process past its 30-minute idle sweep, and as the life of
   * its record in the store. At least 30 minutes.
   */
  STATE_RETENTION_MS: wholeNumber(30 * 60_000, 2 ** 31 - 1).default(DEFAULT_STATE_RETENTION_MS),
});

type EnvConfig = z.infer<typeof envSchema>;

export interface Config extends EnvConfig {
  readonly profiles: ConnectionProfiles;
}

export class ConfigError extends Error {}

function formatIssues(error: z.ZodError, where: string): string {
  return error.issues
    .map((i) => {
      // An unknown key is named in the path, as the key whose value is bad is.
      const path = i.code === 'unrecognized_keys' ? [...i.path, i.keys.join(', ')] : i.path;
      return `${where}${path.join('.')}: ${i.message}`;
    })
    .join('; ');
}

/**
 * Connection profiles: `connections.<kind>.<name>.<key>`, keys as in trigger metadata without
 * the prefix. `<key>FromEnv: VAR` reads the value from the scaler's environment (a mounted Secret).
 */
export function parseProfiles(raw: unknown, env: Readonly<Record<string, string | undefined>>): ConnectionProfiles {
  // A misspelt key is refused, not dropped: `connection:` for `connections:` started with no profiles.
  const unknown = (allowed: string) => (issue: { code: string }) =>
    issue.code === 'unrecognized_keys' ? `unknown key; allowed: ${allowed}` : undefined;
  const shape = z.strictObject(
    {
      connections: z
        .partialRecord(
          z.enum(sourceKinds as [string, ...string[]]),
          z.record(z.string(), z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]))),
          { error: unknown(sourceKinds.join(', ')) },
        )
        .default({}),
    },
    { error: unknown('connections') },
  );
  const parsed = shape.safeParse(raw ?? {});
  if (!parsed.success) throw new ConfigError(`config file: ${formatIssues(parsed.error, '')}`);
  const profiles: ConnectionProfiles = {};
  for (const [kind, named] of Object.entries(parsed.data.connections)) {
    const table = sourceFields[kind as keyof typeof sourceFields] as Record<string, { fromEnv?: boolean; secret?: boolean }>;
    const out: Record<string, Record<string, string>> = {};
    for (const [name, values] of Object.entries(named ?? {})) {
      const profile: Record<string, string> = {};
      for (const [key, value] of Object.entries(values)) {
        const base = key.endsWith('FromEnv') ? key.slice(0, -'FromEnv'.length) : key;
        // A key may be a mapping stringified (`? {host: amqp://u:pw@h}`): quoted masked and clipped (found by review).
        const where = clip(redact(`connections.${kind}.${name}.${key}`), 200);
        if (!Object.hasOwn(table, base) || base === 'connection') {
          throw new ConfigError(
            `config file: ${where}: unknown key; allowed: ${Object.keys(table)
              .filter((k) => k !== 'connection')
              .join(', ')}, each also as <key>FromEnv naming an environment variable`,
          );
        }
        if (key !== base && Object.hasOwn(values, base)) {
          throw new ConfigError(`config file: ${where}: set either ${base} or ${key}, not both`);
        }
        if (key !== base) {
          const name = String(value);
          const resolved = env[name];
          // Named only when it reads as a variable's name, for a secret's key as one in capitals (the
          // convention, and no password's look): a password pasted here was quoted (found by review).
          const named = (table[base]?.secret === true ? SECRET_ENV_NAME : ENV_NAME).test(name);
          if (resolved === undefined)
            throw new ConfigError(
              `config file: ${where}: ${named ? `environment variable ${name}` : 'the environment variable it names'} is not set`,
            );
          profile[base] = resolved;
        } else {
          profile[base] = String(value);
        }
      }
      // Checked here, at start-up, not first when a trigger names the profile (and then reported
      // to KEDA against keys the trigger does not hold).
      const issues = profileIssues(kind as SourceKind, name, profile);
      if (issues.length > 0) throw new ConfigError(`config file: ${issues.join('; ')}`);
      out[name] = profile;
    }
    profiles[kind as keyof ConnectionProfiles] = out;
  }
  return profiles;
}

/** What a <key>FromEnv may name: a POSIX-style variable name, at most 128 characters. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const SECRET_ENV_NAME = /^[A-Z_][A-Z0-9_]{0,127}$/;

/**
 * What a CONFIG_FILE that cannot be read or parsed says: the yaml library's message quotes the lines
 * around a syntax error, which hold the profiles' passwords (found by review): its code and where,
 * not the excerpt.
 */
function yamlErrorText(err: unknown): string {
  const e = err as { code?: unknown; linePos?: readonly { line: number; col: number }[]; message?: unknown };
  if (typeof e.code === 'string' && Array.isArray(e.linePos) && e.linePos.length > 0) {
    const { line, col } = e.linePos[0]!;
    return `YAML ${e.code} at line ${line}, column ${col}`;
  }
  // An unreadable file (ENOENT, EACCES): Node's message names the path only.
  return errorMessage(err);
}

/**
 * A CONFIG_FILE's text, every value as the text written (YAML's failsafe schema): under the core
 * schema an unquoted 00042 was read as 42 and 0x1F2E as 7982, a user name or password rewritten.
 * A warning (an unresolved tag, an unknown directive) refuses the file as an error does: the yaml
 * library's parse() printed it to stderr with the lines around it, a profile's password in them
 * (found by review).
 */
export function readConfigYaml(text: string): unknown {
  // logLevel error: toJS() printed its warnings too (a mapping used as a key, stringified whole).
  const doc = parseDocument(text, { schema: 'failsafe', logLevel: 'error' });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem !== undefined) throw problem;
  return doc.toJS();
}

/** The settings of a state store, which mean nothing without STATE_STORE_URL. */
const STORE_SETTINGS = [
  'STATE_STORE_PASSWORD',
  'STATE_STORE_TLS_CA_FILE',
  'STATE_STORE_CLUSTER',
  'STATE_STORE_SENTINEL_MASTER',
  'STATE_STORE_SENTINEL_PASSWORD',
] as const;

function checkStateStore(config: EnvConfig): void {
  if (config.STATE_STORE_URL === undefined) {
    const set = STORE_SETTINGS.filter((key) => config[key] !== undefined && config[key] !== false);
    if (set.length > 0) throw new ConfigError(`environment: ${set.join(', ')} need STATE_STORE_URL`);
    return;
  }
  if (config.STATE_STORE_CLUSTER && config.STATE_STORE_SENTINEL_MASTER !== undefined) {
    throw new ConfigError(
      'environment: STATE_STORE_CLUSTER and STATE_STORE_SENTINEL_MASTER: a store is a cluster or Sentinel-managed, not both',
    );
  }
  if (config.STATE_STORE_SENTINEL_PASSWORD !== undefined && config.STATE_STORE_SENTINEL_MASTER === undefined) {
    throw new ConfigError('environment: STATE_STORE_SENTINEL_PASSWORD needs STATE_STORE_SENTINEL_MASTER');
  }
  let tls: boolean;
  try {
    const address = parseStoreUrl(config.STATE_STORE_URL);
    tls = address.tls;
    if (config.STATE_STORE_CLUSTER && address.db !== 0) {
      throw new ConfigError('environment: STATE_STORE_URL: a cluster has database 0 only (STATE_STORE_CLUSTER=true)');
    }
  } catch (err) {
    // The message never quotes the URL: it may hold a password.
    if (err instanceof StoreUrlError) throw new ConfigError(`environment: STATE_STORE_URL: ${err.message}`);
    throw err;
  }
  if (config.STATE_STORE_TLS_CA_FILE !== undefined && !tls) {
    throw new ConfigError('environment: STATE_STORE_TLS_CA_FILE needs a rediss:// STATE_STORE_URL (TLS)');
  }
}

export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(`environment: ${formatIssues(parsed.error, '')}`);
  const config = parsed.data;
  if ((config.TLS_CERT_FILE === undefined) !== (config.TLS_KEY_FILE === undefined)) {
    throw new ConfigError('environment: TLS_CERT_FILE and TLS_KEY_FILE go together');
  }
  if (config.TLS_CLIENT_CA_FILE !== undefined && config.TLS_CERT_FILE === undefined) {
    throw new ConfigError('environment: TLS_CLIENT_CA_FILE (mutual TLS) needs TLS_CERT_FILE and TLS_KEY_FILE');
  }
  // Found by review: the same port twice failed at bind, exit 1 and "address in use", as if taken.
  const ports = (['GRPC_PORT', 'METRICS_PORT', 'HEALTH_PORT'] as const).filter((name) => config[name] !== 0);
  for (const [i, name] of ports.entries()) {
    const before = ports.slice(0, i).find((other) => config[other] === config[name]);
    if (before !== undefined)
      throw new ConfigError(`environment: ${name} is ${config[name]}, as ${before} is; allowed: a port of its own`);
  }
  checkStateStore(config);
  let raw: unknown = {};
  if (config.CONFIG_FILE !== undefined) {
    try {
      raw = readConfigYaml(readFileSync(config.CONFIG_FILE, 'utf8'));
    } catch (err) {
      throw new ConfigError(`CONFIG_FILE ${config.CONFIG_FILE}: ${yamlErrorText(err)}`);
    }
  }
  return { ...config, profiles: parseProfiles(raw, env) };
}
