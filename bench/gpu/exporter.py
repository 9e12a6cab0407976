# NVML read through pynvml, exposed under dcgm-exporter's metric and label names (dcgm-exporter
# itself needs NVIDIA's DCGM library, absent here). DCGM_FI_DEV_GPU_UTIL is NVML's utilization.gpu.
import socket, sys, time
import pynvml
from prometheus_client import Gauge, start_http_server, REGISTRY, PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR
for c in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.unregister(c)
pynvml.nvmlInit()
labels = ['gpu', 'UUID', 'device', 'modelName', 'Hostname', 'container', 'namespace', 'pod']
util = Gauge('DCGM_FI_DEV_GPU_UTIL', 'GPU utilization (in %).', labels)
fb = Gauge('DCGM_FI_DEV_FB_USED', 'Framebuffer memory used (in MiB).', labels)
start_http_server(9400, addr='127.0.0.1')
host = socket.gethostname()
out = open(sys.argv[1], 'w')
while True:
    for i in range(pynvml.nvmlDeviceGetCount()):
        h = pynvml.nvmlDeviceGetHandleByIndex(i)
        name = pynvml.nvmlDeviceGetName(h)
        uuid = pynvml.nvmlDeviceGetUUID(h)
        lab = dict(gpu=str(i), UUID=uuid if isinstance(uuid, str) else uuid.decode(), device=f'nvidia{i}',
                   modelName=name if isinstance(name, str) else name.decode(), Hostname=host,
                   container='server', namespace='inference', pod=f'llm-{i}')
        u = pynvml.nvmlDeviceGetUtilizationRates(h).gpu
        util.labels(**lab).set(u)
        fb.labels(**lab).set(pynvml.nvmlDeviceGetMemoryInfo(h).used / 2**20)
        out.write(f'{time.time():.3f} {i} {u}\n'); out.flush()
    time.sleep(0.5)
