// The entry point takes SIGTERM and SIGINT before any module loads: node as PID 1 (the image's)
// drops a signal it has no handler for, and the modules take half a second or more to load.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const main = readFileSync(new URL('../../src/main.ts', import.meta.url), 'utf8');

describe('src/main.ts', () => {
  it('imports types alone statically, and loads the rest after its signal handlers', () => {
    const imports = main.split('\n').filter((l) => /^import\b/.test(l));
    expect(imports.length).toBeGreaterThan(0);
    for (const line of imports) expect(line).toMatch(/^import type /);
    const handlers = Math.max(main.indexOf("process.on('SIGTERM'"), main.indexOf("process.on('SIGINT'"));
    expect(main.indexOf("process.on('SIGTERM'")).toBeGreaterThan(0);
    expect(main.indexOf("process.on('SIGINT'")).toBeGreaterThan(0);
    expect(main.indexOf('await import(')).toBeGreaterThan(handlers);
  });
});
