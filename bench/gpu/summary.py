import json, sys
o = sys.argv[1]
phases = [json.loads(l) for l in open(f'{o}/phases.log')]
rows = [json.loads(l) for l in open(f'{o}/driver.log')][1:]
nvml = [l.split() for l in open(f'{o}/nvml.log')]
print('spec:', open(f'{o}/driver.log').readline().strip())
print(f"{'phase':<11} {'n':>3} {'NVML util %':>14} {'Prometheus G':>16} {'scaler busyGpus':>18} {'GetMetrics (D)':>15} {'IsActive':>9} {'typo trigger':>22}")
for p, nxt in zip(phases, phases[1:]):
    a, b = p['t'] + 6, nxt['t']  # skip the first 6 s of a phase: scrape, NVML's window, the read cache
    sel = [r for r in rows if a <= r['t'] < b]
    nv = [float(x[2]) for x in nvml if a <= float(x[0]) < b]
    def rng(xs):
        xs = [float(x) for x in xs if isinstance(x, (int, float, str)) and str(x).replace('.', '', 1).isdigit()]
        return f"{min(xs):.2f}-{max(xs):.2f}" if xs else '-'
    typo = sorted({f"{r['typo']['metrics'] if not isinstance(r['typo']['metrics'], dict) else r['typo']['metrics'].get('code')}/{r['typo']['active'] if not isinstance(r['typo']['active'], dict) else r['typo']['active'].get('code')}" for r in sel})
    print(f"{p['phase']:<11} {len(sel):>3} {rng(nv):>14} {rng([r['prom'] for r in sel]):>16} {rng([r['busyGpus'] for r in sel]):>18} {rng([r['llm']['metrics'] for r in sel]):>15} {','.join(sorted({str(r['llm']['active']) for r in sel})):>9} {','.join(typo):>22}")
