// The explain CLI's text for a trigger: what it says of when KEDA last asked, of an edit that
// replaced the trigger, and of small figures.
import { describe, expect, it } from 'vitest';
// @ts-expect-error: plain JavaScript, shipped as the package's bin without types
import { isViews, parseArgs, reason, render } from '../../bin/keda-inference-scaler.mjs';

const view = (extra: Record<string, unknown> = {}) => ({
  trigger: { id: 't1', namespace: 'ns', name: 'so', sources: ['rabbitmq queue jobs'] },
  desiredReplicas: 2,
  active: true,
  metricValue: 2,
  explanation: {
    activeReason: 'backlog 3 > activationBacklog 0',
    signals: { backlog: 3, arrivalRatePerSecond: 1 / 3600 },
    demands: { backlog: 2, hold: 1 },
    winner: 'backlog',
    details: { serviceSeconds: 1.23456, noiseMessages: 0, throughputPerReplica: 0.0001234 },
  },
  lastAskedAt: '2026-12-07T06:00:00.000Z',
  secondsSinceAsked: 4,
  ...extra,
});

const renderView = render as (v: object) => string;

describe('explain CLI', () => {
  // Found by review: the refusal quoted the URL whole, its password too.
  it.each(['http://admin:Sup3rS3cret@scaler:99999', 'admin:Sup3rS3cret@scaler:8080'])(
    'refuses --url %s without its password',
    (url) => {
      expect(() => parseArgs(['explain', '--namespace', 'ns', '--name', 'so', '--url', url])).toThrow(
        /^--url: want .*, got "\*\*\*@scaler:\d+"/,
      );
    },
  );

  it('prints figures under 1 to three significant digits, the rest to three decimals', () => {
    const text = renderView(view());
    expect(text).toContain('arrivalRatePerSecond = 0.000278');
    expect(text).toContain('throughputPerReplica = 0.000123');
    expect(text).toContain('serviceSeconds = 1.235');
    expect(text).toContain('noiseMessages = 0');
  });

  it.each([
    [4, false],
    [120, false],
    [121, true],
  ])('says when KEDA last asked (%i s before), and past two minutes that it seems to have stopped: %s', (ago, stopped) => {
    const text = renderView(view({ secondsSinceAsked: ago }));
    expect(text).toContain(`last asked: 2026-12-07T06:00:00.000Z (${ago} s before this answer)`);
    expect(text.includes('KEDA has not asked since')).toBe(stopped);
  });

  it('says the busy GPUs size nothing where the queues count the messages in service, and only then', () => {
    const base = view().explanation;
    const text = renderView(view({ explanation: { ...base, details: { ...base.details, gpuReplicasNotSizing: 10 } } }));
    expect(text).toContain('      gpu = 10, not sizing: the queues count the messages in service');
    expect(renderView(view())).not.toContain('not sizing');
  });

  it('asks whether each replica opens several consumers when the model suggests consumersPerReplica, and only then', () => {
    const base = view().explanation;
    const text = renderView(view({ explanation: { ...base, details: { ...base.details, consumersPerReplicaSuggested: 4 } } }));
    expect(text).toContain(
      '  hint: consumersPerReplica 4? For ten minutes the queues counted about 4 consumers for each replica asked for',
    );
    expect(renderView(view())).not.toContain('hint:');
  });

  it('names the trigger an edit replaced this one with, instead of calling it stopped', () => {
    const text = renderView(view({ secondsSinceAsked: 600, replacedBy: 't2' }));
    expect(text).toContain("replaced by: trigger t2, after its settings were edited; KEDA gets that trigger's answers");
    expect(text).not.toContain('KEDA has not asked since');
  });
});

// Found by review: another server's JSON on the port ended in a TypeError with a stack, and a name
// whose every address refused (localhost: ::1 and 127.0.0.1) printed an empty reason.
describe('the explain CLI on answers that are not the scaler', () => {
  it.each([
    [[], true],
    [[{ trigger: { namespace: 'ns', name: 'a', id: 'x', sources: [] }, explanation: null }], true],
    [[{ trigger: { namespace: 'ns', name: 'a' }, refused: { code: 'INVALID_ARGUMENT' } }], true],
    [[1], false],
    [[{ trigger: {} }], false],
    [{ items: [] }, false],
    [null, false],
  ])('%j is a list of trigger views: %s', (answer, views) => {
    expect(isViews(answer)).toBe(views);
  });

  it('says why a request failed, from the errors of an AggregateError with an empty message', () => {
    const refused = (address: string) => Object.assign(new Error(`connect ECONNREFUSED ${address}`), { code: 'ECONNREFUSED' });
    const aggregate = new AggregateError([refused('::1:8080'), refused('127.0.0.1:8080')], '');
    expect(reason(new TypeError('fetch failed', { cause: aggregate }))).toBe(
      'connect ECONNREFUSED ::1:8080; connect ECONNREFUSED 127.0.0.1:8080',
    );
    expect(reason(new TypeError('fetch failed', { cause: refused('10.0.0.1:8080') }))).toBe('connect ECONNREFUSED 10.0.0.1:8080');
    expect(reason(new Error('HTTP 503'))).toBe('HTTP 503');
  });
});
