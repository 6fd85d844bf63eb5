"""Bench-only: the work src/loader.py does, without any sandbox and without the broker, so
`sandload run` can be compared against it (scripts/bench.sh).

usage: python -I -B bench_bare_loader.py MODEL INPUT.npy OUTPUT.npy

Same steps and calls as the loader: import TensorFlow's Keras, load with compile=False (and
safe_mode where the API has it), predict with verbose=0, make the output C-contiguous in its
own dtype; the input comes from a .npy file instead of the broker pipe and the output goes
to a .npy file instead of the pipe. Prints the in-process phase times to stderr as JSON.
It ends like the loader does on SHUTDOWN: flush, then os._exit(0), skipping the interpreter's
(with TensorFlow loaded, slow) finalisation. Not shipped in the binary; never used by sandload.
"""
import json
import os
import sys
import time

T0 = time.monotonic()


def main():
    model_path, in_path, out_path = sys.argv[1:4]
    import tensorflow as tf

    keras = tf.keras
    import inspect

    import numpy as np

    t_import = time.monotonic() - T0
    load = keras.models.load_model
    kwargs = {"compile": False}
    if "safe_mode" in inspect.signature(load).parameters:
        kwargs["safe_mode"] = True
    t = time.monotonic()
    model = load(model_path, **kwargs)
    t_load = time.monotonic() - t
    x = np.load(in_path)
    t = time.monotonic()
    y = model.predict(x, verbose=0)
    if isinstance(y, (list, tuple)):
        y = y[0]
    y = np.ascontiguousarray(np.asarray(y))
    t_predict = time.monotonic() - t
    np.save(out_path, y)
    sys.stderr.write(json.dumps({"import": t_import, "load": t_load, "predict": t_predict}) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


main()
