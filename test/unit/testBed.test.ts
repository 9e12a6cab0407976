// The test command's contract with the test bed: scripts/test.sh starts the services unless every
// address the integration tests need is set, and the README names the same addresses.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SERVICE_KEYS } from '../support/services.ts';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

describe('the addresses of the test bed', () => {
  it('scripts/test.sh checks every one the integration tests require', () => {
    const loop = /^for key in (.+); do$/m.exec(read('scripts/test.sh'))?.[1];
    expect(loop?.split(' ').sort()).toEqual([...SERVICE_KEYS].sort());
  });

  it('the README names every one', () => {
    const readme = read('README.md');
    for (const key of SERVICE_KEYS) expect(readme).toContain(`\`${key}\``);
  });
});
