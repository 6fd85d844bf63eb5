#!/usr/bin/env bash
# Validates deploy/*.yaml offline (no cluster, no network beyond PyPI for the first install):
#   1. every core Kubernetes object against the strict JSON schemas that the PyPI package
#      kubernetes-validate bundles, for the oldest and newest versions we document;
#   2. the KServe ServingRuntime and InferenceService (CRDs, no bundled schema) against the
#      required fields of their CRDs (a subset schema below);
#   3. sandload's own requirements: seccomp Localhost with a profile that exists, procMount
#      Unmasked with hostUsers: false, no privilege escalation, no capabilities, read-only
#      root, V2 health probes, a Job that does not retry a verdict;
#   4. a deliberately broken copy is rejected, so the validator is shown to catch errors.
# Prints "validate-deploy: N passed, M failed" and exits non-zero on any failure.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
venv="$here/.venv-tools"
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check \
    kubernetes-validate==1.37.0 jsonschema PyYAML || { echo "validate-deploy: cannot install kubernetes-validate"; exit 1; }
fi
versions=${K8S_VERSIONS:-"1.33.0 1.37.0"}
exec "$venv/bin/python" - "$versions" deploy/*.yaml <<'EOF'
import copy, json, os, subprocess, sys, tempfile
import jsonschema, yaml

versions, files = sys.argv[1].split(), sys.argv[2:]
passed, failed = 0, 0

def check(name, ok, why=""):
    global passed, failed
    if ok:
        passed += 1
        print("PASS", name)
    else:
        failed += 1
        print("FAIL", name + (": " + why if why else ""))

def validate_core(docs, version):
    """kubernetes-validate --strict on the docs; a missing schema is a failure, not a warning."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump_all(docs, f)
    p = subprocess.run([os.path.join(sys.prefix, "bin", "kubernetes-validate"), "--strict", "-k", version, f.name],
                       capture_output=True, text=True)
    os.unlink(f.name)
    out = (p.stdout + p.stderr).strip()
    return p.returncode == 0 and "Couldn't find schema" not in out and "ERROR" not in out, out

KSERVE = "serving.kserve.io/"
container_schema = {
    "type": "object", "required": ["name", "image"],
    "properties": {"name": {"type": "string", "minLength": 1}, "image": {"type": "string", "minLength": 1},
                   "args": {"type": "array", "items": {"type": "string"}},
                   "ports": {"type": "array", "items": {"type": "object", "required": ["containerPort"]}}},
}
schemas = {
    ("serving.kserve.io/v1alpha1", "ServingRuntime"): {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "metadata": {"type": "object", "required": ["name"]},
            "spec": {
                "type": "object", "required": ["containers", "supportedModelFormats"],
                "properties": {
                    "containers": {"type": "array", "minItems": 1, "items": container_schema},
                    "supportedModelFormats": {"type": "array", "minItems": 1, "items": {
                        "type": "object", "required": ["name"],
                        "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                                       "autoSelect": {"type": "boolean"}, "priority": {"type": "integer"}},
                        "additionalProperties": False}},
                    "protocolVersions": {"type": "array", "items": {"enum": ["v1", "v2", "grpc-v1", "grpc-v2"]}},
                    "multiModel": {"type": "boolean"},
                    "disabled": {"type": "boolean"},
                },
            },
        },
    },
    ("serving.kserve.io/v1beta1", "InferenceService"): {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "metadata": {"type": "object", "required": ["name"]},
            "spec": {"type": "object", "required": ["predictor"], "properties": {"predictor": {
                "type": "object", "required": ["model"], "properties": {"model": {
                    "type": "object", "required": ["modelFormat"],
                    "properties": {"modelFormat": {"type": "object", "required": ["name"]},
                                   "runtime": {"type": "string"}, "storageUri": {"type": "string"},
                                   "protocolVersion": {"enum": ["v1", "v2", "grpc-v1", "grpc-v2"]}}}}}}},
        },
    },
}

docs = []
for path in files:
    try:
        for d in yaml.safe_load_all(open(path)):
            if d:
                docs.append((path, d))
        check("%s parses as YAML" % path, True)
    except yaml.YAMLError as e:
        check("%s parses as YAML" % path, False, str(e))

core = [d for _, d in docs if not d.get("apiVersion", "").startswith(KSERVE)]
crds = [(p, d) for p, d in docs if d.get("apiVersion", "").startswith(KSERVE)]
for v in versions:
    ok, out = validate_core(core, v)
    check("%d core objects valid (strict) for Kubernetes %s" % (len(core), v), ok, out[-1500:])

for path, d in crds:
    key = (d.get("apiVersion"), d.get("kind"))
    name = "%s %s/%s" % (path, d.get("kind"), d.get("metadata", {}).get("name"))
    if key not in schemas:
        check(name + " has a known kind", False, "no schema for %s %s" % key)
        continue
    errs = sorted(jsonschema.Draft7Validator(schemas[key]).iter_errors(d), key=str)
    check(name + " has the CRD's required fields", not errs, "; ".join(e.message for e in errs[:5]))

# ---- sandload's requirements -------------------------------------------------------------
profile_dir = "policies"
def pod_specs():
    for path, d in docs:
        k = d.get("kind")
        if k in ("Deployment", "Job"):
            yield path, k, d["spec"]["template"]["spec"], d["spec"]["template"]["spec"].get("containers", [])
        elif k == "ServingRuntime":
            yield path, k, d["spec"], d["spec"].get("containers", [])

runtimes = {d["metadata"]["name"]: d for _, d in docs if d.get("kind") == "ServingRuntime"}
for path, kind, pod, containers in pod_specs():
    why = []
    psc = pod.get("securityContext", {})
    if kind != "ServingRuntime" and pod.get("hostUsers") is not False:
        why.append("hostUsers: false missing (procMount: Unmasked needs a user namespace)")
    for c in containers:
        sc = dict(psc, **c.get("securityContext", {}))
        sp = sc.get("seccompProfile", {})
        if sp.get("type") != "Localhost":
            why.append("%s: seccompProfile is not Localhost" % c["name"])
        else:
            local = sp.get("localhostProfile", "")
            if os.path.basename(local) != "container-seccomp.json" or not os.path.exists(os.path.join(profile_dir, os.path.basename(local))):
                why.append("%s: localhostProfile %r is not policies/container-seccomp.json" % (c["name"], local))
        for key, want in [("procMount", "Unmasked"), ("allowPrivilegeEscalation", False),
                          ("readOnlyRootFilesystem", True), ("runAsNonRoot", True)]:
            if sc.get(key) != want:
                why.append("%s: %s is %r, want %r" % (c["name"], key, sc.get(key), want))
        if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc.get("capabilities", {}).get("add"):
            why.append("%s: capabilities must drop ALL and add none" % c["name"])
        if sc.get("privileged"):
            why.append("%s: privileged" % c["name"])
        args = c.get("args", [])
        if kind in ("Deployment", "ServingRuntime"):
            if not args or args[0] != "serve":
                why.append("%s: args do not start with serve" % c["name"])
            rp = c.get("readinessProbe", {}).get("httpGet", {}).get("path")
            lp = c.get("livenessProbe", {}).get("httpGet", {}).get("path")
            if (rp, lp) != ("/v2/health/ready", "/v2/health/live"):
                why.append("%s: probes are %r/%r" % (c["name"], rp, lp))
        if kind == "Job" and (not args or args[0] != "run"):
            why.append("%s: args do not start with run" % c["name"])
    if kind == "Job":
        spec = [d for _, d in docs if d.get("kind") == "Job"][0]["spec"]
        codes = {v for r in spec.get("podFailurePolicy", {}).get("rules", []) if r.get("action") == "FailJob"
                 for v in r.get("onExitCodes", {}).get("values", [])}
        if not {3, 4, 7} <= codes:
            why.append("podFailurePolicy must fail the Job on exit 3, 4 and 7 (no retry of a verdict)")
        if pod.get("restartPolicy") != "Never":
            why.append("restartPolicy must be Never")
    check("%s %s: sandbox prerequisites and hardening" % (path, kind), not why, "; ".join(why))

for _, d in docs:
    if d.get("kind") == "Service":
        sel = d["spec"].get("selector", {})
        deps = [x for _, x in docs if x.get("kind") == "Deployment"
                and all(x["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())]
        check("Service %s selects the serve Deployment" % d["metadata"]["name"], bool(deps))
    if d.get("kind") == "InferenceService":
        m = d["spec"]["predictor"]["model"]
        rt = runtimes.get(m.get("runtime"))
        fmts = [f["name"] for f in (rt or {}).get("spec", {}).get("supportedModelFormats", [])]
        ok = rt is not None and m["modelFormat"]["name"] in fmts and "v2" in rt["spec"].get("protocolVersions", [])
        ok = ok and d["spec"]["predictor"].get("hostUsers") is False
        check("InferenceService %s uses the sandload runtime over V2 with hostUsers: false" % d["metadata"]["name"], ok)

profile = json.load(open(os.path.join(profile_dir, "container-seccomp.json")))
added = sorted(n for s in profile["syscalls"] if s.get("comment", "").startswith("sandload:") for n in s["names"])
check("container-seccomp.json adds exactly unshare, mount, umount2, pivot_root, sethostname",
      added == ["mount", "pivot_root", "sethostname", "umount2", "unshare"], repr(added))

# ---- the validator catches errors ----------------------------------------------------------
bad = copy.deepcopy([d for d in core if d.get("kind") == "Deployment"])
bad[0]["spec"]["template"]["spec"]["containers"][0]["securityContextt"] = {}
ok, _ = validate_core(bad, versions[-1])
check("a Deployment with a misspelt field is rejected", not ok)
bad_rt = copy.deepcopy([d for _, d in crds if d["kind"] == "ServingRuntime"][0])
del bad_rt["spec"]["containers"][0]["image"]
check("a ServingRuntime without an image is rejected",
      any(True for _ in jsonschema.Draft7Validator(schemas[("serving.kserve.io/v1alpha1", "ServingRuntime")]).iter_errors(bad_rt)))

print("validate-deploy: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
EOF
