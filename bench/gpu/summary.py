# The table of docs/gpu.md, "Against a real GPU", from one bench/gpu/run.sh: per load phase (its
# first 6 s left out: a scrape, NVML's window and the read cache), what NVML read, what Prometheus
# answered for the trigger's query, and what the scaler answered. `python3 summary.py OUT_DIR`.
import json
import sys

out = sys.argv[1]
phases = [json.loads(line) for line in open(f'{out}/phases.log')]
with open(f'{out}/driver.log') as f:
    spec = f.readline().strip()
    rows = [json.loads(line) for line in f]
nvml = [line.split() for line in open(f'{out}/nvml.log')]


def numbers(values):
    """The values that are numbers (a read that failed or found no series is left out)."""
    result = []
    for v in values:
        try:
            result.append(float(v))
        except (TypeError, ValueError):
            pass
    return result


def span(values, mean=False):
    xs = numbers(values)
    if not xs:
        return '-'
    text = f'{min(xs):.2f}-{max(xs):.2f}'
    return f'{text} ({sum(xs) / len(xs):.1f})' if mean else text


def answer(call):
    """A GetMetrics value or IsActive result, or the error a call got."""
    return str(call.get('error', '?')) if isinstance(call, dict) else str(call)


print('spec:', spec)
head = ['phase', 'n', 'NVML util % (mean)', 'Prometheus G', 'scaler busyGpus', 'GetMetrics (D)', 'IsActive', 'selector matching nothing']
print(' | '.join(head))
for phase, following in zip(phases, phases[1:]):
    start, end = phase['t'] + 6, following['t']
    sel = [r for r in rows if start <= r['t'] < end]
    util = [x[2] for x in nvml if start <= float(x[0]) < end]
    typo = sorted({f"D {answer(r['typo']['metrics'])}, {answer(r['typo']['active'])}" for r in sel})
    print(' | '.join([
        phase['phase'],
        str(len(sel)),
        span(util, mean=True),
        span([r.get('prom') for r in sel]),
        span([r.get('busyGpus') for r in sel]),
        span([r['llm']['metrics'] for r in sel]),
        ','.join(sorted({answer(r['llm']['active']) for r in sel})),
        '; '.join(typo),
    ]))
