"""Bench-only load generator for V2 infer endpoints: C keep-alive clients for D seconds.

usage: bench_serve_client.py HOST:PORT MODEL CLIENTS SECONDS [json|binary64m]
prints one JSON line: {"rps": .., "p50_ms": .., "p99_ms": .., "errors": .., "gbps": ..}
"""
import http.client
import json
import sys
import threading
import time

import numpy as np

addr, model, clients, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
mode = sys.argv[5] if len(sys.argv) > 5 else "json"
host, port = addr.rsplit(":", 1)
if mode == "json":
    body = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}).encode()
    headers = {"Content-Type": "application/json"}
else:  # 64 MiB float32 tensor both ways through the binary-tensor extension
    x = np.ones((16, 1 << 20), dtype=np.float32)
    head = json.dumps({"inputs": [{"name": "x", "shape": list(x.shape), "datatype": "FP32",
                                   "parameters": {"binary_data_size": x.nbytes}}],
                       "parameters": {"binary_data_output": True}}).encode()
    body = head + x.tobytes()
    headers = {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}
lat, errors, moved = [], [0], [0]
lock = threading.Lock()
stop = time.monotonic() + seconds


def worker():
    c = http.client.HTTPConnection(host, int(port), timeout=120)
    while time.monotonic() < stop:
        t = time.perf_counter()
        try:
            c.request("POST", "/v2/models/%s/infer" % model, body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
            ok = r.status == 200
        except Exception:
            ok, data = False, b""
            c = http.client.HTTPConnection(host, int(port), timeout=120)
        dt = time.perf_counter() - t
        with lock:
            if ok:
                lat.append(dt)
                moved[0] += len(body) + len(data)
            else:
                errors[0] += 1


ts = [threading.Thread(target=worker) for _ in range(clients)]
t0 = time.monotonic()
for t in ts:
    t.start()
for t in ts:
    t.join()
wall = time.monotonic() - t0
lat.sort()
pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")  # noqa: E731
print(json.dumps({"rps": len(lat) / wall, "p50_ms": pick(0.5), "p99_ms": pick(0.99), "errors": errors[0],
                  "requests": len(lat), "gbps": moved[0] / wall / 1e9}))
