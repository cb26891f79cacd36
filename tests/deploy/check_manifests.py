#!/usr/bin/env python3
"""The deployable artifacts under deploy/, checked against each other and against the origin.

    check_manifests.py DEV.yaml PROD.yaml

DEV.yaml and PROD.yaml are `kubectl kustomize` of deploy/k8s/overlays/dev and prod. Every object
is validated against the Kubernetes OpenAPI schemas that kubernetes-validate bundles (strict:
unknown fields fail), for the oldest and the newest Kubernetes it covers here; then what the
schemas cannot say: probes, ports, users, secrets by reference, selectors, the migration Job, each
overlay's own promises, and the Containerfile that builds the image they run. Prints one line per
check and a closing `N passed, N failed`; exits 1 if any failed.

Needs PyYAML and kubernetes-validate (tests/deploy/run installs both into a virtualenv).
"""

import json
import re
import sys
from pathlib import Path

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_VERSIONS = ("1.25.0", "1.37.0")
ORIGIN = "agentplane-origin"
DEV_ONLY = "agentplane/dev-only"
# Environment variables whose value is a credential: they must come from a Secret.
SECRET_NAME = re.compile(r"^(DATABASE_URL|DATABASE_ADMIN_URL|.*(_TOKEN|_PASSWORD|_API_KEY|_SECRET))$")
# A URL with a password in it (postgres://user:password@host).
CREDENTIAL_URL = re.compile(r"://[^/@\s:]+:[^/@\s]+@")

from report import check, check_none, finish  # noqa: E402  (beside this script)


def load(path):
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d]


def of_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def named(docs, kind, name):
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    return found[0] if found else None


def pod_spec(obj):
    return obj["spec"]["template"]["spec"]


def pod_labels(obj):
    return obj["spec"]["template"]["metadata"].get("labels", {})


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def container(obj, name):
    return next((c for c in pod_spec(obj)["containers"] if c["name"] == name), None)


def port_number(c, port):
    """A probe's or Service's port (a number or a container port's name) as a number."""
    if isinstance(port, int):
        return port
    return next((p["containerPort"] for p in c.get("ports", []) if p.get("name") == port), None)


def env_of(c, name):
    return next((e for e in c.get("env", []) if e["name"] == name), None)


def config_of(docs, c):
    """The container's settings: its envFrom ConfigMaps, then its literal env values."""
    values = {}
    for source in c.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref:
            cm = named(docs, "ConfigMap", ref["name"])
            values.update((cm or {}).get("data", {}))
    for e in c.get("env", []):
        if "value" in e:
            values[e["name"]] = e["value"]
    return values


def mount_for(obj, c, path):
    """The volume mount holding `path` (the longest mount path above it) and its volume."""
    mounts = [m for m in c.get("volumeMounts", []) if (path.rstrip("/") + "/").startswith(m["mountPath"].rstrip("/") + "/")]
    if not mounts:
        return None, None
    m = max(mounts, key=lambda m: len(m["mountPath"]))
    volume = next((v for v in pod_spec(obj).get("volumes", []) if v["name"] == m["name"]), None)
    return m, volume


def secret_refs(obj):
    """(secret, key, optional) for every Secret the pod reads: env, envFrom and volumes."""
    refs = []
    spec = pod_spec(obj)
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs.append((ref["name"], ref["key"], ref.get("optional", False)))
        for source in c.get("envFrom", []):
            ref = source.get("secretRef")
            if ref:
                refs.append((ref["name"], None, ref.get("optional", False)))
    for v in spec.get("volumes", []):
        if v.get("secret"):
            s = v["secret"]
            keys = [i["key"] for i in s.get("items", [])] or [None]
            refs.extend((s["secretName"], k, s.get("optional", False)) for k in keys)
    return refs


# --- The Containerfile ---------------------------------------------------------------------------


def containerfile():
    """The stages of deploy/container/Containerfile: [(name, base, [(instruction, argument)])]."""
    text = (ROOT / "deploy/container/Containerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    stages, args = [], {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif word == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            stages.append((parts[2] if len(parts) > 2 else None, base, []))
        else:
            stages[-1][2].append((word, rest.strip()))
    return stages, args


def check_containerfile():
    stages, args = containerfile()
    names = [s[0] for s in stages]
    builder = stages[0]
    check("Containerfile: multi-stage, a builder then the runtime stages", len(stages) >= 2, f"{len(stages)} stage(s)")
    runs = " ".join(a for w, a in builder[2] if w == "RUN")
    check(
        "Containerfile: the builder compiles the production server (release, locked, no dev-tools)",
        "cargo build --release --locked -p agentplane-origin" in runs and "dev-tools" not in runs and "--features" not in runs,
        runs,
    )
    check(
        "Containerfile: builder and runtime from standard images (rust, debian slim)",
        args.get("RUST_IMAGE", "").startswith("rust:") and args.get("RUNTIME_IMAGE", "").startswith("debian:") and "slim" in args["RUNTIME_IMAGE"],
        args,
    )
    final = stages[-1]
    # The runtime stages: every stage from one built on the runtime image on, down to the last.
    runtime = [s for s in stages if s[1] == args.get("RUNTIME_IMAGE") or s[1] in names]
    tools = re.compile(r"\b(cargo|rustc|rustup|gcc|cc|build-essential)\b")
    found = [f"{s[0]}: {w} {a}" for s in runtime for w, a in s[2] if w == "RUN" and tools.search(a)]
    check_none("Containerfile: no compiler in the runtime stages", found)
    check(
        "Containerfile: the runtime stages start from the runtime image, not the builder's",
        all(s[1] != args.get("RUST_IMAGE") and s[1] != builder[0] for s in runtime) and runtime, [s[:2] for s in stages],
    )

    def last(word):
        values = [a for s in runtime for w, a in s[2] if w == word]
        return values[-1] if values else None

    user = last("USER") or ""
    uid = user.split(":")[0]
    check("Containerfile: USER is a numeric non-root uid", uid.isdigit() and int(uid) > 0, f"USER {user!r}")
    entrypoint, cmd, expose = json.loads(last("ENTRYPOINT") or "null"), json.loads(last("CMD") or "null"), last("EXPOSE")
    check("Containerfile: ENTRYPOINT [\"agentplane\"]", entrypoint == ["agentplane"], entrypoint)
    listen = f"0.0.0.0:{expose}"
    check(f"Containerfile: CMD serves on {listen}, the EXPOSEd port", cmd == ["serve", "--listen", listen], cmd)
    check_none("Containerfile: no HEALTHCHECK (the orchestrator probes /health and /ready)", [s[0] for s in stages if any(w == "HEALTHCHECK" for w, _ in s[2])])
    copies = [a for s in stages for w, a in s[2] if w == "COPY"]
    check_none("Containerfile: migrations not copied (sqlx::migrate! compiles them in)", [c for c in copies if "migrations" in c])
    # The model files the image copies are the ones the origin reads (models/embed/local.rs).
    read = set(re.findall(r'read\("([^"]+)"\)', (ROOT / "origin/src/models/embed/local.rs").read_text()))
    model_copy = next((c for c in copies if ".tools/models/" in c), "")
    copied = {Path(p).name for p in model_copy.split()[:-1]}
    check(
        f"Containerfile: the default (last) stage bakes in the model files the origin reads ({', '.join(sorted(read))})",
        final[2] and model_copy in [a for w, a in final[2] if w == "COPY"] and copied == read, f"copies {sorted(copied)}",
    )
    env = " ".join(a for s in runtime for w, a in s[2] if w == "ENV")
    model_dir = re.search(r"AGENTPLANE_MODEL_DIR=(\S+)", env)
    check(
        "Containerfile: AGENTPLANE_MODEL_DIR is where the model is copied",
        model_dir and model_copy.split()[-1].rstrip("/") == model_dir.group(1).rstrip("/"), (env, model_copy),
    )
    ignore = (ROOT / ".dockerignore").read_text().split()
    check(
        ".dockerignore: target/ and .tools/ stay out of the context, the model comes in",
        "target" in ignore and ".tools/*" in ignore and "!.tools/models" in ignore, ignore,
    )
    data_dir = re.search(r"AGENTPLANE_DATA_DIR=(\S+)", env)
    return {
        "uid": int(uid) if uid.isdigit() else None,
        "port": int(expose) if expose and expose.isdigit() else None,
        "cmd": cmd,
        "data_dir": data_dir.group(1) if data_dir else None,
    }


# --- The overlays --------------------------------------------------------------------------------


def check_overlay(overlay, docs, image):
    p = f"{overlay}: "
    kinds = {d["kind"] for d in docs}

    for version in SCHEMA_VERSIONS:
        errors = []
        for d in docs:
            try:
                kubernetes_validate.validate(d, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                errors.append(f"{d['kind']}/{d['metadata']['name']} {'.'.join(map(str, e.path))}: {e.message}")
            except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as e:
                errors.append(e.message)
        check_none(f"{p}{len(docs)} objects valid against the Kubernetes {version} schemas (strict)", errors)

    want = {"ServiceAccount", "ConfigMap", "Deployment", "Service", "Job", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    if overlay == "dev":
        want |= {"StatefulSet", "Secret"}
    check_none(f"{p}has {', '.join(sorted(want))}", sorted(want - kinds))
    deployment, job = named(docs, "Deployment", ORIGIN), named(docs, "Job", "agentplane-migrate")
    if not deployment or not job:
        check(f"{p}Deployment {ORIGIN} and Job agentplane-migrate", False, "not both found")
        return
    origin, migrate = container(deployment, "origin"), container(job, "migrate")
    labels = pod_labels(deployment)

    # Ports and probes.
    port = port_number(origin, "http")
    check(f"{p}the origin listens on its container port {port}, as the image's CMD does", origin.get("args") == ["serve", "--listen", f"0.0.0.0:{port}"] and origin["args"] == image["cmd"], origin.get("args"))
    for probe, path in (("readinessProbe", "/ready"), ("livenessProbe", "/health"), ("startupProbe", "/health")):
        get = origin.get(probe, {}).get("httpGet", {})
        check(f"{p}{probe} GET {path} on the container port", get.get("path") == path and port_number(origin, get.get("port")) == port, get or "none")
    service = named(docs, "Service", ORIGIN)
    sp = service["spec"]["ports"][0] if service else {}
    check(f"{p}Service selects the origin's pods and targets port {port}", service and selects(service["spec"]["selector"], labels) and port_number(origin, sp.get("targetPort")) == port, service and service["spec"])
    others = [d for d in docs if d["kind"] in ("Job", "StatefulSet", "Deployment") and d is not deployment]
    check_none(f"{p}Service and PDB select no other workload's pods", [f"{d['kind']}/{d['metadata']['name']}" for d in others for s in (service, named(docs, "PodDisruptionBudget", ORIGIN)) if s and selects(s["spec"].get("selector", {}).get("matchLabels", s["spec"].get("selector")), pod_labels(d))])

    # Users and privileges.
    for obj in [d for d in docs if d["kind"] in ("Deployment", "Job", "StatefulSet")]:
        spec, name = pod_spec(obj), f"{obj['kind']}/{obj['metadata']['name']}"
        sc = spec.get("securityContext", {})
        problems = []
        if sc.get("runAsNonRoot") is not True or not isinstance(sc.get("runAsUser"), int) or sc["runAsUser"] == 0:
            problems.append(f"pod securityContext {sc}")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append("service account token mounted")
        for c in spec["containers"]:
            csc = c.get("securityContext", {})
            if csc.get("allowPrivilegeEscalation") is not False or csc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{c['name']}: privilege escalation or writable root")
            if "ALL" not in csc.get("capabilities", {}).get("drop", []) or csc.get("capabilities", {}).get("add"):
                problems.append(f"{c['name']}: capabilities {csc.get('capabilities')}")
            if not c.get("resources", {}).get("requests") or not c.get("resources", {}).get("limits", {}).get("memory"):
                problems.append(f"{c['name']}: no requests or memory limit")
        check_none(f"{p}{name} runs as non-root, read-only root, no capabilities, bounded resources", problems)
    for obj in (deployment, job):
        uid = pod_spec(obj)["securityContext"].get("runAsUser")
        check(f"{p}{obj['kind']} runs as the image's USER {image['uid']}", uid == image["uid"], uid)

    # Secrets only by reference; no credential in plain text anywhere.
    leaks = []
    for obj in [d for d in docs if "template" in d.get("spec", {})]:
        for c in pod_spec(obj)["containers"]:
            for e in c.get("env", []):
                if SECRET_NAME.match(e["name"]) and "secretKeyRef" not in e.get("valueFrom", {}):
                    leaks.append(f"{obj['metadata']['name']}/{c['name']} {e['name']} not from a Secret")
                if CREDENTIAL_URL.search(str(e.get("value", ""))):
                    leaks.append(f"{obj['metadata']['name']}/{c['name']} {e['name']} holds a password")
    for cm in of_kind(docs, "ConfigMap"):
        for k, v in cm.get("data", {}).items():
            if SECRET_NAME.match(k) or CREDENTIAL_URL.search(v):
                leaks.append(f"ConfigMap {cm['metadata']['name']} {k}")
    check_none(f"{p}credentials only from Secrets (secretKeyRef), none in env values or ConfigMaps", leaks)
    refs = {r for d in docs if "template" in d.get("spec", {}) for r in secret_refs(d)}
    secrets = {s["metadata"]["name"]: s for s in of_kind(docs, "Secret")}
    if overlay == "prod":
        check_none(f"{p}no Secret in the manifests (the operator creates them)", sorted(secrets))
        readme = (ROOT / "deploy/README.md").read_text()
        undocumented = sorted({f"{n}/{k}" for n, k, _ in refs if n not in readme or (k and f"`{k}`" not in readme)})
        check_none(f"{p}every Secret and key the pods read is in deploy/README.md ({len(refs)} references)", undocumented)
    else:
        missing = [f"{n}/{k}" for n, k, optional in refs if not optional and (n not in secrets or (k and k not in secrets[n].get("data", {})))]
        check_none(f"{p}every Secret the pods need is generated here", missing)
        unmarked = [n for n, s in secrets.items() if s["metadata"].get("annotations", {}).get(DEV_ONLY) != "true"]
        check_none(f"{p}every generated Secret is annotated {DEV_ONLY}", unmarked)
    dangling = [s["configMapRef"]["name"] for d in docs if "template" in d.get("spec", {}) for c in pod_spec(d)["containers"] for s in c.get("envFrom", []) if "configMapRef" in s and not named(docs, "ConfigMap", s["configMapRef"]["name"])]
    dangling += [v["configMap"]["name"] for d in docs if "template" in d.get("spec", {}) for v in pod_spec(d).get("volumes", []) if "configMap" in v and not named(docs, "ConfigMap", v["configMap"]["name"])]
    check_none(f"{p}every ConfigMap the pods read is in the manifests", dangling)

    # Autoscaling and disruption.
    hpa, pdb = named(docs, "HorizontalPodAutoscaler", ORIGIN), named(docs, "PodDisruptionBudget", ORIGIN)
    target = hpa and hpa["spec"]["scaleTargetRef"]
    cpu = hpa and [m for m in hpa["spec"].get("metrics", []) if m.get("resource", {}).get("name") == "cpu" and m["resource"]["target"]["type"] == "Utilization"]
    check(
        f"{p}HPA scales Deployment {ORIGIN} on CPU utilisation (the container requests CPU)",
        target == {"apiVersion": "apps/v1", "kind": "Deployment", "name": ORIGIN} and cpu and origin["resources"]["requests"].get("cpu") and hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"], hpa and hpa["spec"],
    )
    check(f"{p}PDB selects the origin's pods", pdb and selects(pdb["spec"]["selector"]["matchLabels"], labels), pdb and pdb["spec"])

    # The migration Job runs what the Deployment runs, against the same database.
    check(f"{p}the Job runs `agentplane migrate`", migrate.get("args") == ["migrate"] and not migrate.get("command"), (migrate.get("command"), migrate.get("args")))
    check(f"{p}the Job and the Deployment run one image ({origin['image']})", migrate["image"] == origin["image"], migrate["image"])
    same = all(env_of(origin, n) and env_of(migrate, n) == env_of(origin, n) for n in ("DATABASE_URL", "DATABASE_ADMIN_URL"))
    check(f"{p}the Job reads DATABASE_URL and DATABASE_ADMIN_URL from the Deployment's Secret keys", same, [env_of(migrate, "DATABASE_URL"), env_of(origin, "DATABASE_URL")])
    check(f"{p}the Job reads the Deployment's settings (the lexical backend is chosen when it first migrates)", migrate.get("envFrom") == origin.get("envFrom"), migrate.get("envFrom"))
    check(f"{p}the Job's pod is not restarted in place", pod_spec(job).get("restartPolicy") in ("Never", "OnFailure"), pod_spec(job).get("restartPolicy"))

    # Whatever the origin writes has a writable volume: the root filesystem is read-only.
    config = config_of(docs, origin)
    card = config.get("AGENTPLANE_CARD_KEY")
    m, volume = mount_for(deployment, origin, card or "/")
    writable = lambda m, v: m and v and not m.get("readOnly") and ("emptyDir" in v or "persistentVolumeClaim" in v)
    check(f"{p}the card key ({card}) is on a mounted volume", card and m, f"AGENTPLANE_CARD_KEY={card}, mount {m}")
    # As Config::trusts_dev_key: explicitly, or by default when no JWKS is configured.
    trust = config.get("AGENTPLANE_TRUST_DEV_KEY")
    dev_key = trust == "true" or (trust is None and not config.get("AGENTPLANE_JWKS"))
    if dev_key:
        dm, dv = mount_for(deployment, origin, (config.get("AGENTPLANE_DATA_DIR") or image["data_dir"]) + "/dev-keys")
        check(f"{p}the development token key has a writable data dir", writable(dm, dv), f"mount {dm}, volume {dv}")

    image_ref = origin["image"]
    tag = image_ref.split("@")[0].rsplit(":", 1)[1] if ":" in image_ref.split("@")[0].rsplit("/", 1)[-1] else None
    check(f"{p}the image is pinned (a tag other than latest, or a digest)", "@sha256:" in image_ref or (tag and tag != "latest"), image_ref)

    if not (hpa and pdb):
        return
    if overlay == "prod":
        spec = deployment["spec"]
        check(f"{p}3 replicas, HPA from 3", spec.get("replicas") == 3 and hpa["spec"]["minReplicas"] == 3, (spec.get("replicas"), hpa["spec"]["minReplicas"]))
        check(
            f"{p}PDB keeps 2 available, fewer than the HPA's minimum (drains can proceed)",
            pdb["spec"].get("minAvailable") == 2 and "maxUnavailable" not in pdb["spec"] and 2 < hpa["spec"]["minReplicas"], pdb["spec"],
        )
        spread = [t for t in pod_spec(deployment).get("topologySpreadConstraints", []) if selects(t.get("labelSelector", {}).get("matchLabels"), labels)]
        keys = {t["topologyKey"] for t in spread}
        check(f"{p}replicas spread across nodes and zones", {"kubernetes.io/hostname", "topology.kubernetes.io/zone"} <= keys, sorted(keys))
        check(f"{p}tokens verified with the issuer's JWKS (https), no development key", config.get("AGENTPLANE_TRUST_DEV_KEY") == "false" and config.get("AGENTPLANE_JWKS", "").startswith("https://"), (config.get("AGENTPLANE_TRUST_DEV_KEY"), config.get("AGENTPLANE_JWKS")))
        check(f"{p}every replica reads one card key from a Secret", volume and "secret" in volume and m.get("readOnly"), volume)
    else:
        check(f"{p}1 replica", deployment["spec"].get("replicas") == 1, deployment["spec"].get("replicas"))
        check(f"{p}the single replica makes its card key on a writable volume", writable(m, volume), volume)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    image = check_containerfile()
    for overlay, path in zip(("dev", "prod"), sys.argv[1:]):
        check_overlay(overlay, load(path), image)
    finish()


if __name__ == "__main__":
    main()
