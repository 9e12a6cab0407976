import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/telemetry/logger.ts';
import { logLines } from '../support/logLines.ts';

const url = 'redis://default:TopSecret@redis:6379';

describe('the logger redacts URL credentials', () => {
  it('in the message, and in the string fields of the object logged with it', () => {
    const { sink, lines } = logLines();
    const logger = createLogger('debug', sink);
    logger.error(
      { err: `Error: connect to ${url} failed`, endpoint: 'http://ak:Sq5Secret@127.0.0.1:9324', port: 6379 },
      'unhandled rejection',
    );
    logger.warn(`connect to ${url} failed`);
    const text = JSON.stringify(lines);
    expect(text).not.toContain('TopSecret');
    expect(text).not.toContain('Sq5Secret');
    expect(lines[0]).toMatchObject({
      msg: 'unhandled rejection',
      err: 'Error: connect to redis://default:***@redis:6379 failed',
      port: 6379,
    });
    expect(lines[0]!.endpoint).toBe('http://ak:***@127.0.0.1:9324');
    expect(lines[1]!.msg).toBe('connect to redis://default:***@redis:6379 failed');
  });

  it('in an error logged whole or as a field: its message and stack, its class kept', () => {
    const { sink, lines } = logLines();
    const logger = createLogger('info', sink);
    class StoreError extends Error {
      readonly code = 'ECONNREFUSED';
    }
    const err = new StoreError(`connect to ${url} failed`);
    logger.error(err);
    logger.error({ err }, 'uncaught exception');
    expect(JSON.stringify(lines)).not.toContain('TopSecret');
    for (const line of lines) {
      const logged = line.err as { type: string; message: string; stack: string; code: string };
      expect(logged.type).toBe('StoreError');
      expect(logged.message).toBe('connect to redis://default:***@redis:6379 failed');
      expect(logged.stack).toContain('redis://default:***@redis:6379');
      expect(logged.code).toBe('ECONNREFUSED');
    }
    expect(lines[0]!.msg).toBe('connect to redis://default:***@redis:6379 failed');
    expect(err.message).toContain('TopSecret');
  });

  // Found by review: causes, aggregated errors and nested fields printed in clear, and an error whose
  // fields are getters on its prototype (DOMException: every abort reason) made the logger throw.
  it('in causes, aggregated errors, nested fields and URL objects; never throwing on an odd error', () => {
    const { sink, lines } = logLines();
    const logger = createLogger('info', sink);
    logger.error({ err: new Error('read failed', { cause: new Error(`connect ${url}`) }) }, 'wrapped');
    logger.error({ err: new AggregateError([new Error(`connect ${url}`)], 'all failed') }, 'aggregated');
    logger.warn({ source: { config: { urls: [url] } }, at: new URL(url) }, 'nested');
    expect(() => logger.error({ err: new DOMException('stopped', 'AbortError') }, 'aborted')).not.toThrow();
    const odd = new Error('odd');
    Object.defineProperty(odd, 'detail', {
      enumerable: true,
      get: () => {
        throw new Error('no');
      },
    });
    expect(() => logger.error({ err: odd }, 'odd')).not.toThrow();
    const cyclic: Record<string, unknown> = { url };
    cyclic.self = cyclic;
    expect(() => logger.warn({ cyclic }, 'cyclic')).not.toThrow();
    const text = JSON.stringify(lines);
    expect(text).not.toContain('TopSecret');
    expect(lines.map((l) => l.msg)).toEqual(['wrapped', 'aggregated', 'nested', 'aborted', 'odd', 'cyclic']);
    expect((lines[0]!.err as { message: string }).message).toBe('read failed: connect redis://default:***@redis:6379');
    expect((lines[3]!.err as { name: string }).name).toBe('AbortError');
  });
});
