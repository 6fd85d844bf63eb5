"""A real Triton client against `sandload serve` (run with .venv-client's python).

usage: triton_infer.py HOST:PORT MODEL INPUT.npy OUT_PREFIX
Writes OUT_PREFIX.json.npy and OUT_PREFIX.binary.npy: the first output, fetched once as JSON
and once with the binary-tensor extension, so the caller can compare both with `sandload run`.
"""
import sys

import numpy as np
import tritonclient.http as httpclient

url, model, inp, prefix = sys.argv[1:5]
client = httpclient.InferenceServerClient(url=url)
assert client.is_server_live(), "not live"
assert client.is_model_ready(model), "model not ready"
meta = client.get_model_metadata(model)
x = np.load(inp)
for binary in (False, True):
    i = httpclient.InferInput(meta["inputs"][0]["name"], list(x.shape), meta["inputs"][0]["datatype"])
    i.set_data_from_numpy(x, binary_data=binary)
    o = httpclient.InferRequestedOutput(meta["outputs"][0]["name"], binary_data=binary)
    res = client.infer(model, [i], outputs=[o])
    y = res.as_numpy(meta["outputs"][0]["name"])
    np.save("%s.%s.npy" % (prefix, "binary" if binary else "json"), y)
print("OK", meta["outputs"][0]["name"], y.shape)
