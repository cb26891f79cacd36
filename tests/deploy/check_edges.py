#!/usr/bin/env python3
"""The edges' deployment manifests, spin.toml and wrangler.toml, checked against each other and
against what the code reads: the settings names of agentplane_core::gateway::EdgeSettings
(core/src/gateway/settings.rs, `var::ALL`), the Worker build's output (scripts/build-edge-cloudflare)
and the Spin build command's. Standard library only (tomllib). Prints one line per check and a
closing `N passed, N failed`; exits 1 if any failed.
"""

import re
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = re.compile(r"\{\{\s*([^}\s]+)\s*\}\}")

from report import check, check_none, finish  # noqa: E402  (beside this script)


def settings_names():
    """The names EdgeSettings::from_vars reads, from `var::ALL` and the constants it lists."""
    text = (ROOT / "core/src/gateway/settings.rs").read_text()
    consts = dict(re.findall(r'pub const (\w+): &str = "([^"]+)";', text))
    listed = re.search(r"pub const ALL: &\[&str\] = &\[(.*?)\];", text, re.S).group(1)
    return {consts[c] for c in re.findall(r"\b([A-Z_]+)\b", listed)}


def check_spin(names):
    m = tomllib.loads((ROOT / "spin.toml").read_text())
    declared = m.get("variables", {})
    check("spin.toml: manifest version 2", m.get("spin_manifest_version") == 2, m.get("spin_manifest_version"))
    check_none("spin.toml: every setting the edge reads is an application variable", sorted(names - declared.keys()))
    check_none("spin.toml: no application variable the edge does not read", sorted(declared.keys() - names))
    # Spin refuses a variable with neither, and one with both.
    bad = [n for n, v in declared.items() if ("default" in v) == bool(v.get("required"))]
    check_none("spin.toml: every variable has a default or is required", bad)
    check("spin.toml: the inline JWKS is a secret variable", declared.get("jwks", {}).get("secret") is True, declared.get("jwks"))

    triggers = m.get("trigger", {}).get("http", [])
    check("spin.toml: one HTTP trigger, route /..., on a defined component", len(triggers) == 1 and triggers[0].get("route") == "/..." and triggers[0].get("component") in m.get("component", {}), triggers)
    for name, component in m.get("component", {}).items():
        p = f"spin.toml [component.{name}]: "
        variables = component.get("variables", {})
        used = {u for v in variables.values() for u in TEMPLATE.findall(v)}
        used |= {u for h in component.get("allowed_outbound_hosts", []) for u in TEMPLATE.findall(h)}
        check_none(f"{p}every {{{{ variable }}}} it uses is declared", sorted(used - declared.keys()))
        mismatched = [k for k, v in variables.items() if TEMPLATE.fullmatch(v.strip()) is None or TEMPLATE.fullmatch(v.strip()).group(1) != k]
        check_none(f"{p}each component variable passes the application variable of its name", mismatched)
        check_none(f"{p}every setting reaches the component", sorted(names - variables.keys()))
        check(f"{p}may call the origin (allowed_outbound_hosts names origin_url)", "{{ origin_url }}" in component.get("allowed_outbound_hosts", []), component.get("allowed_outbound_hosts"))
        origin = declared.get("origin_url", {}).get("default", "")
        jwks_url = declared.get("jwks_url", {}).get("default", "")
        check(f"{p}the default JWKS URL is on the origin, which it may call", origin and jwks_url.startswith(origin.rstrip("/") + "/"), (origin, jwks_url))
        check(f"{p}has the key-value store its tenant records and cache live in", "default" in component.get("key_value_stores", []), component.get("key_value_stores"))

        build = shlex.split(component.get("build", {}).get("command", ""))
        opt = lambda flag: build[build.index(flag) + 1] if flag in build else None
        check(f"{p}the build is a locked release build of one crate, without features", build[:2] == ["cargo", "build"] and {"--release", "--locked"} <= set(build) and opt("-p") and not any(a.startswith("--features") for a in build), build)
        produced = f"{opt('--target-dir') or 'target'}/{opt('--target')}/release/{(opt('-p') or '').replace('-', '_')}.wasm"
        check(f"{p}source is what its build command produces ({produced})", component.get("source") == produced, component.get("source"))
        crate = (ROOT / "edge/spin/Cargo.toml").read_text()
        check(f"{p}the build's crate is edge/spin's", re.search(rf'^name = "{re.escape(opt("-p") or "")}"', crate, re.M), opt("-p"))


def check_wrangler(names):
    w = tomllib.loads((ROOT / "wrangler.toml").read_text())
    build = (ROOT / "scripts/build-edge-cloudflare").read_text()
    out = re.search(r"^out=(\S+)", build, re.M).group(1)
    check("wrangler.toml: [build] runs scripts/build-edge-cloudflare", w.get("build", {}).get("command") == "scripts/build-edge-cloudflare", w.get("build"))
    check(f"wrangler.toml: main is the entry module that build writes ({out}/index.js)", w.get("main") == f"{out}/index.js" and 'mv "$staging/bundle.js" "$out/index.js"' in build, w.get("main"))
    bindings = w.get("durable_objects", {}).get("bindings", [])
    classes = {c for mig in w.get("migrations", []) for c in mig.get("new_sqlite_classes", [])}
    check("wrangler.toml: the TENANTS Durable Object binding has its SQLite class migration", {"name": "TENANTS", "class_name": "TenantObject"} in bindings and "TenantObject" in classes, (bindings, classes))
    worker = {f"AGENTPLANE_{n.upper()}" for n in names}
    check_none("wrangler.toml: every var is a setting the edge reads (AGENTPLANE_ + its name)", sorted(set(w.get("vars", {})) - worker))
    # The edge refuses to start without these (or an inline JWKS, a secret); the rest have
    # defaults in the core.
    needed = {"AGENTPLANE_ORIGIN_URL", "AGENTPLANE_ISSUER", "AGENTPLANE_AUDIENCE", "AGENTPLANE_RESOURCE"}
    needed.add("AGENTPLANE_JWKS_URL")
    check_none("wrangler.toml: origin, issuer, audience and resource are set, and a JWKS URL", sorted(needed - set(w.get("vars", {}))))


def main():
    names = settings_names()
    check(f"core: EdgeSettings reads {len(names)} settings", len(names) >= 4, names)
    check_spin(names)
    check_wrangler(names)
    finish()


if __name__ == "__main__":
    main()
