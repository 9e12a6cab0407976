import { describe, expect, it } from 'vitest';
import { Episode } from '../../src/telemetry/episode.ts';

describe('Episode: a lasting condition said at a bounded rate', () => {
  it.each([
    {
      what: 'said at once, then every 10 minutes',
      firstAfterMs: 0,
      at: [0, 1, 599, 600, 601, 1200],
      lines: ['first', undefined, undefined, 'reminder', undefined, 'reminder'],
    },
    {
      what: 'said once it has lasted 2 minutes',
      firstAfterMs: 120,
      at: [0, 60, 119, 120, 121, 720],
      lines: [undefined, undefined, undefined, 'first', undefined, 'reminder'],
    },
  ])('$what', ({ firstAfterMs, at, lines }) => {
    const episode = new Episode(0, firstAfterMs * 1000, 600_000);
    expect(at.map((s) => episode.note(s * 1000))).toEqual(lines);
    expect(episode.count).toBe(at.length);
    expect(episode.said).toBe(true);
    expect(episode.seconds(1234_500)).toBe(1235);
  });

  it('has said nothing before its first line', () => {
    const episode = new Episode(0, 60_000, 600_000);
    episode.note(30_000);
    expect(episode.said).toBe(false);
  });
});
