# Phases of real GPU work: bf16 matrix products back to back (full), half of each 200 ms (half), none.
import json, sys, time
import torch
x = torch.randn(8192, 8192, device='cuda', dtype=torch.bfloat16)
(x @ x); torch.cuda.synchronize()
def work(seconds, duty, period=0.2):
    end = time.time() + seconds
    while time.time() < end:
        t0 = time.time()
        while time.time() - t0 < period * duty:
            (x @ x); torch.cuda.synchronize()
        time.sleep(period * (1 - duty))
log = open(sys.argv[1], 'w')
for name, seconds, duty in [('idle', 25, 0), ('full', 40, 1.0), ('half', 40, 0.5), ('idle-after', 80, 0)]:
    log.write(json.dumps({'t': time.time(), 'phase': name, 'duty': duty}) + '\n'); log.flush()
    time.sleep(seconds) if duty == 0 else work(seconds, duty)
log.write(json.dumps({'t': time.time(), 'phase': 'end'}) + '\n')
