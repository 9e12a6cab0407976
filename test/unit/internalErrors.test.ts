// An INTERNAL answer is a defect of the scaler: the KedaInferenceScalerInternalErrors alert sends
// the operator to the log at level error for its stack, so that line must be there (a review found
// it logged at debug without a stack), redacted, and not once per call in a flood.
import { EventEmitter } from 'node:events';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine.ts';
import { SourceUnavailable } from '../../src/errors.ts';
import { ExternalScalerService } from '../../src/server/externalScaler.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { ScalerMetrics } from '../../src/telemetry/metrics.ts';
import { logLines } from '../support/logLines.ts';
import { ref } from '../support/scaler.ts';

function bed(fails: () => never) {
  const { sink, lines } = logLines<{
    level: string;
    msg: string;
    method?: string;
    err?: { type: string; message: string; stack: string };
  }>();
  const engine = { trigger: () => ({ metricName: 'm' }), evaluate: fails } as unknown as Engine;
  const metrics = new ScalerMetrics(new Registry(), { defaultMetrics: false });
  const service = new ExternalScalerService({
    engine,
    logger: createLogger('info', sink),
    metrics,
    streamIntervalMs: 1000,
    maxOpenStreams: 100,
    maxStreamAgeMs: 60_000,
  });
  const isActive = service.handlers().IsActive as (call: unknown, callback: (err: { code: number } | null) => void) => void;
  const call = () => new Promise<number | undefined>((resolve) => isActive({ request: ref({}) }, (err) => resolve(err?.code)));
  /** Opens a StreamIsActive whose first check runs at once; ends it. */
  const stream = () => {
    const open = Object.assign(new EventEmitter(), { request: ref({}), write: () => true, end: () => open.emit('finish') });
    (service.handlers().StreamIsActive as (c: unknown) => void)(open);
    open.emit('cancelled');
  };
  const internal = async (method: string) =>
    (await metrics.requests.get()).values.find((v) => v.labels.method === method && v.labels.code === 'INTERNAL')?.value ?? 0;
  return { call, lines, stream, internal };
}

describe('an INTERNAL answer', () => {
  it('is logged at error with its stack, credentials masked, once a minute per method', async () => {
    const { call, lines } = bed(() => {
      throw new TypeError('cannot read x of redis://default:TopSecret@redis:6379');
    });
    expect(await call()).toBe(13); // INTERNAL
    expect(await call()).toBe(13);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'error',
      method: 'IsActive',
      // Which ScaledObject, for the report (found by review: the line named none).
      namespace: ref({}).namespace,
      name: ref({}).name,
      msg: 'internal error: a defect of the scaler, please report it',
    });
    expect(lines[0]!.err!.type).toBe('TypeError');
    expect(lines[0]!.err!.stack).toContain('internalErrors.test.ts');
    expect(JSON.stringify(lines)).not.toContain('TopSecret');
  });

  it('is answered and logged for an error whose fields are getters (DOMException, every abort reason)', async () => {
    // Found by review: the logger threw on it, and the call was never answered.
    const { call, lines } = bed(() => {
      throw new DOMException('stopped', 'AbortError');
    });
    expect(await call()).toBe(13);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.err).toMatchObject({ type: 'DOMException', message: 'stopped' });
  });

  it('in a StreamIsActive check: counted where the InternalErrors alert looks, and logged', async () => {
    const { stream, lines, internal } = bed(() => {
      throw new TypeError('a defect');
    });
    stream();
    expect(await internal('StreamIsActive')).toBe(1);
    expect(lines).toMatchObject([{ level: 'error', method: 'StreamIsActive' }]);
  });

  it('is not what a source that cannot be read gets: that is its own code, and not an error line', async () => {
    const { call, lines } = bed(() => {
      throw new SourceUnavailable('broker down');
    });
    expect(await call()).toBe(14); // UNAVAILABLE
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
  });
});
