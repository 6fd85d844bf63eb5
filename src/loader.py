# sandload loader: runs inside the sandbox as `python -I -B -c <this> <config-json>`.
# It is shipped inside the sandload binary and never read from a path the model could touch.
# Protocol: see src/broker/mod.rs. Requests arrive on fd 5, responses leave on fd 6.
import json
import os
import struct
import sys
import time

T0 = time.monotonic()
CFG = json.loads(sys.argv[1])
IN_FD, OUT_FD = 5, 6
MAGIC = b"SLB\x01"
READY, LOADED, DESCRIBE, SIGNATURE, PREDICT, RESULT, ERROR, EVENT, SHUTDOWN = range(1, 10)
PREAMBLE = struct.Struct("<4sB3xI4xQ")
MAX_REQUEST_HEADER = 1 << 20
DTYPES = {
    "bool": "|b1", "int8": "|i1", "int16": "<i2", "int32": "<i4", "int64": "<i8",
    "uint8": "|u1", "uint16": "<u2", "uint32": "<u4", "uint64": "<u8",
    "float16": "<f2", "float32": "<f4", "float64": "<f8",
}


def write_all(data):
    view = memoryview(data).cast("B")
    while view:
        n = os.write(OUT_FD, view[: 1 << 20])
        view = view[n:]


def send(kind, header, parts=()):
    flush_events()
    h = json.dumps(header).encode()
    total = sum(memoryview(p).nbytes for p in parts)
    write_all(PREAMBLE.pack(MAGIC, kind, len(h), total) + h)
    for p in parts:
        write_all(p)


def read_into(view):
    got, n = 0, len(view)
    while got < n:
        k = os.readv(IN_FD, [view[got : got + (1 << 20)]])
        if k == 0:
            os._exit(0)  # the supervisor went away: nothing left to do
        got += k


def read_exact(n):
    buf = bytearray(n)
    read_into(memoryview(buf))
    return buf


def read_request():
    magic, kind, hlen, plen = PREAMBLE.unpack(read_exact(PREAMBLE.size))
    if magic != MAGIC or hlen > MAX_REQUEST_HEADER:
        os._exit(86)
    return kind, json.loads(read_exact(hlen)) if hlen else {}, plen


# ---- events: PEP 578 audit hooks, queued and sent ahead of the next response ----
EVENTS, SEEN = [], set()
WATCHED = {
    "os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
    "os.forkpty", "os.kill", "os.killpg", "socket.connect", "socket.bind", "socket.__new__",
    "socket.sendto", "socket.getaddrinfo", "ctypes.dlopen", "ctypes.dlsym", "ctypes.call_function",
    "urllib.Request", "os.remove", "os.rename", "os.chmod", "os.chown", "os.putenv",
    "os.listdir", "os.scandir", "shutil.rmtree", "pty.spawn", "webbrowser.open",
}


def quiet_path(path, prefixes):
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def audit(event, args):
    if event not in WATCHED and event != "open":
        return
    try:
        if event == "open":
            path, mode, flags = (list(args) + [None, None, None])[:3]
            if not isinstance(path, str):
                return
            path = os.path.abspath(path)
            writing = (mode and any(c in str(mode) for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            if writing and quiet_path(path, ["/tmp", "/dev/null"]):
                return
            if not writing and quiet_path(path, CFG["quiet_read"]):
                return
            detail = ("write " if writing else "read ") + path
            event = "open"
        elif event in ("os.listdir", "os.scandir") and args and isinstance(args[0], str):
            path = os.path.abspath(args[0])
            if quiet_path(path, CFG["quiet_read"]):
                return
            detail = path
        else:
            detail = repr(args)
        detail = detail[:512]
        if (event, detail) in SEEN or len(SEEN) >= 64:
            return
        SEEN.add((event, detail))
        EVENTS.append({"event": event, "detail": detail})
    except Exception:
        pass


def flush_events():
    while EVENTS:
        ev = EVENTS.pop(0)
        h = json.dumps(ev).encode()
        write_all(PREAMBLE.pack(MAGIC, EVENT, len(h), 0) + h)


# ---- imports (under the phase-1 filter), then phase 2 ----
def import_keras():
    choice = CFG["keras"]
    if choice in ("auto", "tf.keras"):
        try:
            import tensorflow as tf
            major, minor = (int(x) for x in tf.__version__.split(".")[:2])
            if choice == "tf.keras" or (major, minor) < (2, 16):
                return tf.keras, tf.keras.__version__ if hasattr(tf.keras, "__version__") else tf.__version__, "tensorflow " + tf.__version__
        except ImportError:
            if choice == "tf.keras":
                raise
    if choice in ("auto", "tf_keras"):
        try:
            import tf_keras
            return tf_keras, tf_keras.__version__, "tf_keras"
        except ImportError:
            if choice == "tf_keras":
                raise
    # Keras 3 picks its backend from KERAS_BACKEND (default tensorflow); the host environment
    # does not reach the sandbox, so choose one that is installed.
    if "KERAS_BACKEND" not in os.environ:
        import importlib.util
        for backend in ("tensorflow", "jax", "torch"):
            if importlib.util.find_spec(backend) is not None:
                os.environ["KERAS_BACKEND"] = backend
                break
    import keras
    return keras, keras.__version__, "keras " + keras.backend.backend()


def install_phase2(hex_filters, nr_seccomp):
    import ctypes

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    for hx in hex_filters:
        raw = bytes.fromhex(hx)
        n = len(raw) // 8
        insns = (SockFilter * n).from_buffer_copy(raw)
        prog = SockFprog(n, insns)
        # SECCOMP_SET_MODE_FILTER = 1, SECCOMP_FILTER_FLAG_TSYNC = 1: every thread that
        # TensorFlow already started gets the filter too; a non-zero result names a thread
        # that could not be synchronised.
        rc = libc.syscall(ctypes.c_long(nr_seccomp), ctypes.c_long(1), ctypes.c_long(1), ctypes.byref(prog))
        if rc != 0:
            raise OSError(ctypes.get_errno(), "seccomp phase 2 failed (rc=%d)" % rc)


def error_header(phase, exc):
    import traceback
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {"phase": phase, "type": type(exc).__name__, "message": str(exc)[:16384], "traceback": tb[-32768:]}


def dtype_name(dt):
    name = getattr(dt, "name", None) or str(dt)
    return {"bool_": "bool"}.get(name, name)


def describe(model):
    def sig(tensors, names):
        out = []
        for t, n in zip(tensors, names):
            shape = [None if d is None else int(d) for d in tuple(t.shape)]
            out.append({"name": str(n), "dtype": dtype_name(t.dtype), "shape": shape})
        return out

    if not getattr(model, "inputs", None):
        raise TypeError("the model has no static inputs (a subclassed model?); sandload needs a signature")
    in_names = getattr(model, "input_names", None) or [t.name.split(":")[0] for t in model.inputs]
    out_names = getattr(model, "output_names", None) or [t.name.split(":")[0] for t in model.outputs]
    return {"inputs": sig(model.inputs, in_names), "outputs": sig(model.outputs, out_names)}


def predict(np, model, signature, header, payload_len):
    arrays = {}
    for t in header["tensors"]:
        dt = np.dtype(DTYPES[t["dtype"]])
        count = 1
        for d in t["shape"]:
            count *= d
        # numpy.empty, not bytearray: no zero-fill pass over a tensor that is overwritten anyway.
        buf = np.empty(count * dt.itemsize, dtype=np.uint8)
        read_into(memoryview(buf))
        arrays[t["name"]] = buf.view(dt).reshape(t["shape"])
    names = [i["name"] for i in signature["inputs"]]
    xs = [arrays[n] for n in names]
    y = model.predict(xs[0] if len(xs) == 1 else xs, verbose=0)
    if isinstance(y, dict):
        y = [y[o["name"]] for o in signature["outputs"]]
    elif not isinstance(y, (list, tuple)):
        y = [y]
    metas, parts = [], []
    for out, arr in zip(signature["outputs"], y):
        arr = np.asarray(arr)
        name = dtype_name(arr.dtype)
        if name not in DTYPES:
            raise TypeError("output %s has dtype %s, which the broker does not carry" % (out["name"], name))
        arr = np.ascontiguousarray(arr.astype(np.dtype(DTYPES[name]), copy=False))
        metas.append({"name": out["name"], "dtype": name, "shape": [int(d) for d in arr.shape]})
        parts.append(memoryview(arr).cast("B"))
    return metas, parts


def main():
    keras, keras_version, backend = import_keras()
    import numpy as np
    import inspect

    t_import = time.monotonic() - T0
    if CFG["phase2"]:
        install_phase2(CFG["phase2"], CFG["nr_seccomp"])
    # Installed after our own imports, before the model is touched (CVE-2024-3660: the
    # model's Lambda code runs inside load_model).
    sys.addaudithook(audit)
    send(READY, {
        "python": sys.version.split()[0], "keras": str(keras_version), "backend": backend,
        "import_seconds": t_import, "seccomp_phase2": bool(CFG["phase2"]), "audit_hook": True,
    })
    load = keras.models.load_model
    kwargs = {"compile": False}
    if "safe_mode" in inspect.signature(load).parameters:
        kwargs["safe_mode"] = CFG["safe_mode"]
    t = time.monotonic()
    try:
        model = load(CFG["model"], **kwargs)
        signature = describe(model)
    except BaseException as exc:  # noqa: the model's own code may raise anything
        send(ERROR, error_header("load", exc))
        model = signature = None
    else:
        signature["load_seconds"] = time.monotonic() - t
        send(LOADED, signature)
    while True:
        kind, header, plen = read_request()
        if kind == SHUTDOWN:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        elif signature is None:
            os._exit(3)
        elif kind == DESCRIBE:
            send(SIGNATURE, signature)
        elif kind == PREDICT:
            try:
                metas, parts = predict(np, model, signature, header, plen)
            except BaseException as exc:  # noqa
                send(ERROR, error_header("predict", exc))
            else:
                send(RESULT, {"tensors": metas}, parts)
        else:
            os._exit(86)


main()
