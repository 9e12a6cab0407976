import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

describe('loadConfig: TRIGGER_METRICS', () => {
  it('is on unless set to "false"', () => {
    expect(loadConfig({}).TRIGGER_METRICS).toBe(true);
    expect(loadConfig({ TRIGGER_METRICS: 'true' }).TRIGGER_METRICS).toBe(true);
    expect(loadConfig({ TRIGGER_METRICS: 'false' }).TRIGGER_METRICS).toBe(false);
  });

  it('refuses anything else, naming the variable and the allowed values', () => {
    expect(() => loadConfig({ TRIGGER_METRICS: 'no' })).toThrow(ConfigError);
    expect(() => loadConfig({ TRIGGER_METRICS: 'no' })).toThrow(/TRIGGER_METRICS: .*"true".*"false"/);
  });
});
