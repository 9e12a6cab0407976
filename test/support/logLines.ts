// A sink for the project's JSON logger that keeps each line it is given, parsed.
import { Writable } from 'node:stream';

export function logLines<Line = Record<string, unknown>>(): { readonly sink: Writable; readonly lines: Line[] } {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Line);
      done();
    },
  });
  return { sink, lines };
}
