"""Bench-only: an unsandboxed, in-process Python HTTP server answering V2 infer requests with
the same Keras call as sandload's loader (model.predict), one model, one lock (= 1 worker).

usage: bench_bare_server.py PORT NAME=MODEL [NAME=MODEL...]
"""
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

DT = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64}
NAMES = {np.dtype(v).name: k for k, v in DT.items()}
MODELS = {}
for spec in sys.argv[2:]:
    name, path = spec.split("=", 1)
    MODELS[name] = (tf.keras.models.load_model(path, compile=False), threading.Lock())


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        name = self.path.split("/")[3]
        model, lock = MODELS[name]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        hlen = int(self.headers.get("Inference-Header-Content-Length", len(body)))
        req = json.loads(body[:hlen])
        blob = body[hlen:]
        i = req["inputs"][0]
        if "data" in i:
            x = np.array(i["data"], dtype=DT[i["datatype"]]).reshape(i["shape"])
        else:
            x = np.frombuffer(blob, dtype=DT[i["datatype"]]).reshape(i["shape"])
        with lock:
            y = np.asarray(model.predict(x, verbose=0))
        binary = req.get("parameters", {}).get("binary_data_output", False)
        out = {"name": model.output_names[0], "datatype": NAMES[y.dtype.name], "shape": list(y.shape)}
        if binary:
            raw = np.ascontiguousarray(y).tobytes()
            out["parameters"] = {"binary_data_size": len(raw)}
            head = json.dumps({"model_name": name, "outputs": [out]}).encode()
            payload = head + raw
            self.send_response(200)
            self.send_header("Inference-Header-Content-Length", str(len(head)))
        else:
            out["data"] = y.reshape(-1).tolist()
            payload = json.dumps({"model_name": name, "outputs": [out]}).encode()
            self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


print("ready", flush=True)
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
