// The contract every source meets, run against its real server (as bullmq runs every adapter
// against one suite): a read reports what the thing holds; a missing thing is NOT_FOUND and
// refused credentials UNAUTHENTICATED, never a 0; a server gone is UNAVAILABLE and a fresh read
// succeeds once it is back; a server that stops answering is DEADLINE_EXCEEDED at the scaler's
// deadline; and no error carries a secret of the config. Reads go through the driver and the
// ReadCache with the scaler's deadline, as the engine reads. Left out on purpose: what a source
// reads beyond the one count (rates, consumers, in-flight splits), bad answers and TLS: each
// source's own tests pin those.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReadCache } from '../../src/cache/readCache.ts';
import {
  type ErrorCode,
  ScalerError,
  SourceNotFound,
  SourceTimeout,
  SourceUnauthenticated,
  SourceUnavailable,
  errorCode,
} from '../../src/errors.ts';
import { toServiceError } from '../../src/server/status.ts';
import type { DriverOptions } from '../../src/sources/drivers.ts';
import type { Source, SourceDriver, SourceReading } from '../../src/sources/source.ts';
import { silentLogger } from '../../src/telemetry/logger.ts';
import { parseTrigger } from '../../src/trigger/schema.ts';
import type { SourceConfig } from '../../src/trigger/types.ts';
import { eventually } from './scaler.ts';
import { TcpProxy } from './tcpProxy.ts';

/** The scaler's deadline for one source query in these tests (SOURCE_TIMEOUT_MS of testConfig). */
const CONTRACT_TIMEOUT_MS = 2000;

/** A config for a thing holding known items, and what a read of it must report (at least). */
interface Holding<C> {
  readonly config: C;
  readonly expected: Partial<SourceReading>;
}

/** The server checks credentials: a config with a wrong one, and that secret. */
interface CredentialsChecked<C> {
  readonly checked: true;
  wrong(): Promise<{ readonly config: C; readonly secret: string }>;
}

/**
 * The server accepts any credentials, so UNAUTHENTICATED cannot happen there. The suite does not
 * skip: it reads with credentials the bed made up and expects the value, which fails the day
 * the server starts checking them (then the bed must declare the case).
 */
interface CredentialsNotChecked<C> {
  readonly checked: false;
  readonly reason: string;
  madeUp(): Promise<Holding<C> & { readonly secret: string }>;
}

export interface SourceBed<C extends SourceConfig> {
  /** Fixtures, before the first case (queues, users, auth proxies). */
  open(): Promise<void>;
  close(): Promise<void>;
  /** The driver as the scaler makes it; a bed whose clients dial addresses the server gives (Kafka) routes them through `proxy`. */
  driver(options: DriverOptions, proxy?: TcpProxy): SourceDriver<C>;
  /** Secrets every config of the bed carries (passwords, tokens): no error may contain one. At least 8 characters each. */
  secrets(): readonly string[];
  /** A thing holding n items (queue with n messages, lag n, a series with value n). */
  holding(n: number): Promise<Holding<C>>;
  /** A config naming a thing that does not exist. */
  missing(): Promise<C>;
  readonly credentials: CredentialsChecked<C> | CredentialsNotChecked<C>;
  /** Where a TcpProxy in front of the server forwards to. */
  proxyTarget(): { host: string; port: number };
  /** A thing holding n items, read through `proxy`. */
  throughProxy(proxy: TcpProxy, n: number): Promise<Holding<C>>;
  /** How long a new count may take to show (a server's statistics interval); 0 when at once. */
  readonly settleMs?: number;
  /** How long after the server is back a fresh read must succeed. */
  readonly recoveryMs?: number;
}

/** The source config the scaler builds from trigger metadata (one source group). */
export function sourceConfig<C extends SourceConfig>(metadata: Record<string, string>): C {
  const [config] = parseTrigger({ name: 'contract', namespace: 'contract', metadata }).sources;
  if (config === undefined) throw new Error(`no source in ${Object.keys(metadata).join(', ')}`);
  return config as C;
}

/** The reader the engine has: a driver and a ReadCache with the scaler's deadline; every read a fresh query. */
class Reader {
  private readonly cache = new ReadCache({ ttlMs: 1000, timeoutMs: CONTRACT_TIMEOUT_MS });
  readonly driver: SourceDriver;

  constructor(driver: SourceDriver) {
    this.driver = driver;
  }

  source(config: SourceConfig): Source {
    return this.driver.create(config);
  }

  async read(source: Source): Promise<SourceReading> {
    return (await this.cache.read(source, 0)).reading;
  }

  async error(source: Source): Promise<unknown> {
    return this.read(source).then(
      (reading) => expect.unreachable(`expected an error, read ${JSON.stringify(reading)}`),
      (err: unknown) => err,
    );
  }
}

export function describeSourceContract<C extends SourceConfig>(name: string, bed: SourceBed<C>): void {
  describe(`source contract: ${name}`, () => {
    const options: DriverOptions = { logger: silentLogger(), timeoutMs: CONTRACT_TIMEOUT_MS };
    const drivers: SourceDriver[] = [];
    const reader = (proxy?: TcpProxy) => {
      const driver = bed.driver(options, proxy);
      drivers.push(driver);
      return new Reader(driver);
    };

    /** The error is the typed one, names the source, and carries none of the secrets. */
    function expectError(
      err: unknown,
      type: new (message: string) => ScalerError,
      code: ErrorCode,
      source: Source,
      secrets: readonly string[] = [],
    ) {
      expect(err).toBeInstanceOf(type);
      expect(errorCode(err)).toBe(code);
      const { message } = err as Error;
      expect(message).toContain(source.label);
      const details = toServiceError(err).details;
      for (const secret of [...bed.secrets(), ...secrets]) {
        expect(message).not.toContain(secret);
        expect(details).not.toContain(secret);
      }
      expect(`${source.label} ${source.identity}`).not.toMatch(
        new RegExp([...bed.secrets(), ...secrets].map(escape).join('|') || '$^'),
      );
    }

    /** Reads until the reading shows `expected` (a server's statistics may lag by settleMs). */
    async function expectValue(r: Reader, source: Source, expected: Partial<SourceReading>, withinMs = bed.settleMs ?? 0) {
      const seen = await eventually(
        async () => {
          const reading = await r.read(source);
          return Object.entries(expected).every(([k, v]) => reading[k as keyof SourceReading] === v) ? reading : undefined;
        },
        Math.max(withinMs, 1),
        250,
      ).catch(async () => r.read(source));
      expect(seen).toMatchObject(expected);
    }

    beforeAll(async () => {
      await bed.open();
      for (const secret of bed.secrets())
        expect(secret.length, 'a secret short enough to occur by chance').toBeGreaterThanOrEqual(8);
    });

    afterAll(async () => {
      await Promise.allSettled(drivers.map((d) => d.close()));
      await bed.close();
    });

    it.each([0, 4])('reads a thing holding %i items', async (n) => {
      const { config, expected } = await bed.holding(n);
      const r = reader();
      await expectValue(r, r.source(config), expected);
    });

    it('gives NOT_FOUND naming the source, never a 0, for a thing that does not exist', async () => {
      const r = reader();
      const source = r.source(await bed.missing());
      expectError(await r.error(source), SourceNotFound, 'NOT_FOUND', source);
    });

    if (bed.credentials.checked) {
      const credentials = bed.credentials;
      it('gives UNAUTHENTICATED for a wrong credential, without echoing it', async () => {
        const { config, secret } = await credentials.wrong();
        const r = reader();
        const source = r.source(config);
        expectError(await r.error(source), SourceUnauthenticated, 'UNAUTHENTICATED', source, [secret]);
      });
    } else {
      const credentials = bed.credentials;
      it(`declares UNAUTHENTICATED not applicable (${credentials.reason}): made-up credentials read the value`, async () => {
        expect(credentials.reason).not.toBe('');
        const { config, expected, secret } = await credentials.madeUp();
        expect(secret.length).toBeGreaterThanOrEqual(8);
        const r = reader();
        await expectValue(r, r.source(config), expected);
      });
    }

    it('gives UNAVAILABLE while the server is unreachable, and a fresh read succeeds once it is back', async () => {
      await using proxy = new TcpProxy(bed.proxyTarget());
      await proxy.start();
      const r = reader(proxy);
      const { config, expected } = await bed.throughProxy(proxy, 3);
      const source = r.source(config);
      await expectValue(r, source, expected);

      await proxy.stop();
      // The first read may still finish on what was in flight; the next ones must fail, typed.
      const down = await eventually(async () => r.error(source).catch(() => undefined), 10_000, 200);
      expectError(down, SourceUnavailable, 'UNAVAILABLE', source);

      await proxy.start();
      await expectValue(r, source, expected, bed.recoveryMs ?? 15_000);
    });

    it('gives DEADLINE_EXCEEDED at the deadline when the server stops answering, and reads again once it answers', async () => {
      await using proxy = new TcpProxy(bed.proxyTarget());
      await proxy.start();
      const r = reader(proxy);
      const { config, expected } = await bed.throughProxy(proxy, 2);
      const source = r.source(config);
      await expectValue(r, source, expected);

      proxy.blackhole();
      const started = Date.now();
      const err = await r.error(source);
      const tookMs = Date.now() - started;
      expectError(err, SourceTimeout, 'DEADLINE_EXCEEDED', source);
      expect(tookMs).toBeGreaterThanOrEqual(CONTRACT_TIMEOUT_MS - 50);
      expect(tookMs).toBeLessThan(CONTRACT_TIMEOUT_MS + 1000);

      proxy.heal();
      await expectValue(r, source, expected, bed.recoveryMs ?? 15_000);
    });
  });
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
