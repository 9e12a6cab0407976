// The fault table: one row per (source, fault), the figures of FaultFigures in plain text.
import type { FaultFigures, Tally } from './harness.ts';
import type { Resources } from './scaler.ts';

type Row = FaultFigures | { kind: string; fault: string; notApplicable: string };

const errorsText = (errors: Record<string, number>) =>
  Object.entries(errors)
    .sort((a, b) => b[1] - a[1])
    .map(([code, n]) => `${code} ${n}`)
    .join(', ') || '-';

const change = (before: number, after: number) => (before === after ? String(after) : `${before}->${after}`);

export function resourcesText(before: Resources, after: Resources): string {
  return `fds ${change(before.fds, after.fds)}, sockets ${change(before.sockets, after.sockets)}, timers ${change(before.timers, after.timers)}`;
}

const untrue = (t: Tally) => t.falseZeros + t.wrong;

/** The table, one fault per row; n/a rows say why. */
export function faultTable(rows: readonly Row[]): string {
  const head = [
    'source',
    'fault',
    'secs',
    'right',
    'errors (gRPC status: calls)',
    'false 0',
    'recovery s',
    'streams open',
    'others right',
    'process before -> after',
  ];
  const lines = rows.map((r): string[] => {
    if ('notApplicable' in r) return [r.kind, r.fault, '-', '-', r.notApplicable, '-', '-', '-', '-', '-'];
    const f = r;
    const falseZeros = untrue(f.faulted) + f.streamFalse;
    return [
      f.kind,
      f.fault,
      f.faultSeconds.toFixed(0),
      `${f.faulted.correct}/${f.faulted.calls}`,
      errorsText(f.faulted.errors),
      String(falseZeros),
      f.recoverySeconds === undefined ? 'NOT RECOVERED' : f.recoverySeconds.toFixed(1),
      `${f.streamsOpenAfter}/${f.streamsOpenedTotal}` +
        (Object.keys(f.streamEnds).length > 0 ? ` (ended ${errorsText(f.streamEnds)})` : ''),
      `${f.bystanders.correct}/${f.bystanders.calls}`,
      resourcesText(f.before, f.after) +
        (f.brokerBefore && f.brokerAfter
          ? `; broker: connections ${change(f.brokerBefore.connections, f.brokerAfter.connections)}, channels ${change(f.brokerBefore.channels, f.brokerAfter.channels)}`
          : ''),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [fmt(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt)].join('\n');
}
