// Writes docs/metadata.md from the schema's field tables.
import { writeFileSync } from 'node:fs';
import { metadataReference } from '../src/trigger/reference.ts';

writeFileSync(new URL('../docs/metadata.md', import.meta.url), metadataReference());
