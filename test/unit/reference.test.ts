import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { metadataReference } from '../../src/trigger/reference.ts';
import { scalingFields, sourceFields } from '../../src/trigger/fields.ts';

describe('docs/metadata.md', () => {
  it('is the reference generated from the schema (run `npm run docs:metadata` after changing fields)', () => {
    const onDisk = readFileSync(new URL('../../docs/metadata.md', import.meta.url), 'utf8');
    expect(onDisk).toBe(metadataReference());
  });

  it('lists every key of every source', () => {
    const text = metadataReference();
    for (const [kind, fields] of Object.entries(sourceFields)) {
      for (const name of Object.keys(fields)) expect(text).toContain(`\`${kind}.${name}\``);
    }
    for (const name of Object.keys(scalingFields)) expect(text).toContain(`\`${name}\``);
  });
});
