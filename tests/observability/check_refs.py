#!/usr/bin/env python3
"""Cross-checks the files of deploy/observability/ against each other (run by
tests/observability/run, after promtool has checked and tested the rules):

a. every metric an expression reads (alerts.yml, recording.yml, the dashboard's panel targets
   and template variables) is in metrics.txt (a histogram through its _bucket, _sum or _count
   series, a counter with its _total), is a recording rule of recording.yml, or is `up`; and
   every label a selector of such a metric matches on (`name{label=...}`) is one of its labels
   (the table in metrics.txt's comments), `job`, `instance`, or `le` on a _bucket series;
b. every alert of alerts.yml has a `for`, a severity (page, ticket, warning), a summary, a
   description and a runbook_url pointing at a section of RUNBOOK.md; alerts_test.yml has a case
   where it fires and one where it stays quiet; every recording rule is evaluated by a
   promql_expr_test; no test, and no RUNBOOK section named like an alert, names an alert that
   does not exist;
c. dashboards/*.json parse, and every panel has a datasource (the ${DS_PROMETHEUS} input) and at
   least one target with an expression.

With `--dashboard-rules FILE` it also writes every dashboard expression (Grafana's $__rate_interval
and the like replaced by 5m) into FILE as a recording rule, for `promtool check rules` to parse:
the PromQL of the dashboard is then checked as strictly as the rules'.

Standard library only, so the YAML is read by a small indentation-based reader that knows the
shapes of these files (promtool has already checked that they are valid rule and test files).
Every problem is printed with the file and the offending name; the exit status is 1 if any.

Usage: check_refs.py [DIR] [--dashboard-rules FILE]   (DIR: deploy/observability, the default)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

SEVERITIES = {"page", "ticket", "warning"}
RUNBOOK_PATH = "deploy/observability/RUNBOOK.md"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Series every Prometheus has for each target.
BUILTIN_SERIES = {"up"}
# PromQL words that are not metric names: aggregators (which may stand before `by (...)`),
# operators, modifiers, literals.
KEYWORDS = {
    "sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "limitk", "limit_ratio",
    "and", "or", "unless", "atan2", "bool", "by", "without", "on", "ignoring", "group_left",
    "group_right", "offset", "inf", "nan", "Inf", "NaN",
}

errors: list[str] = []
# (a rule name that says where, expression) of every dashboard target and variable query, for
# --dashboard-rules.
dashboard_exprs: list[tuple[str, str]] = []


def fail(where: str, message: str) -> None:
    errors.append(f"{where}: {message}")


# ---------------------------------------------------------------------------------------------
# metrics.txt


# Each metric's labels, from metrics.txt's comment table (`#   name   label (values), label; note`).
labels_of: dict[str, set[str]] = {}


def read_metrics(path: Path) -> dict[str, str]:
    metrics: dict[str, str] = {}
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if line.startswith("#"):
            m = re.match(r"^#\s+(agentplane_[a-z0-9_]+)\s+(.+)$", line)
            if m:
                spec = re.sub(r"\([^)]*\)", "", m.group(2).split(";")[0])
                labels_of[m.group(1)] = {x.strip() for x in spec.split(",") if x.strip()}
            continue
        if not line:
            continue
        parts = line.split()
        where = f"{path}:{n}"
        if len(parts) != 2:
            fail(where, f"expected `name type`, got {line!r}")
            continue
        name, kind = parts
        if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name):
            fail(where, f"{name!r} is not a metric name")
        if kind not in ("counter", "gauge", "histogram"):
            fail(where, f"{name}: type {kind!r} is not counter, gauge or histogram")
        if kind == "counter" and not name.endswith("_total"):
            fail(where, f"counter {name} must be listed with its _total suffix")
        if kind != "counter" and name.endswith("_total"):
            fail(where, f"{name}: only counters end in _total")
        if name in metrics:
            fail(where, f"{name} listed twice")
        metrics[name] = kind
    if not metrics:
        fail(str(path), "lists no metric")
    for name in labels_of:
        if name not in metrics:
            fail(str(path), f"the label table names {name}, which is not listed")
    return metrics


# ---------------------------------------------------------------------------------------------
# A reader for the YAML shapes of these files


def indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def block_after(lines: list[str], i: int) -> list[str]:
    """The lines of the item or key at line i: those after it indented deeper (blank lines kept)."""
    base = indent_of(lines[i])
    out = []
    for line in lines[i + 1 :]:
        if line.strip() and indent_of(line) <= base:
            break
        out.append(line)
    return out


def scalar_value(lines: list[str], i: int, key: str) -> str | None:
    """The value of `key:` on line i: inline (quotes removed) or a block scalar (| or >)."""
    m = re.match(r"^\s*(?:-\s+)?" + re.escape(key) + r":\s*(.*?)\s*$", lines[i])
    if not m:
        return None
    rest = m.group(1)
    if rest and rest[0] in "|>":
        return "\n".join(line.strip() for line in block_after(lines, i) if line.strip())
    if len(rest) >= 2 and rest[0] == rest[-1] and rest[0] in "'\"":
        rest = rest[1:-1]
    return rest


def strip_comment_lines(text: str) -> list[str]:
    return [line if not line.lstrip().startswith("#") else "" for line in text.splitlines()]


def read_rules(path: Path) -> list[dict]:
    """Each rule of a Prometheus rule file: kind (alert or record), name, line, and its keys."""
    lines = strip_comment_lines(path.read_text())
    rules = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)-\s+(alert|record):\s*(\S+)\s*$", line)
        if not m:
            continue
        rule = {"kind": m.group(2), "name": m.group(3).strip("'\""), "line": i + 1, "keys": {}}
        # The rule's other keys sit at the indent of the text after "- ".
        key_indent = len(m.group(1)) + 2
        body = block_after(lines, i)
        for j, b in enumerate(body):
            if not b.strip():
                continue
            km = re.match(r"^(\s*)([A-Za-z_]+):", b)
            if not km:
                continue
            key, ind = km.group(2), len(km.group(1))
            if ind == key_indent and key in ("expr", "for"):
                rule["keys"][key] = scalar_value(body, j, key)
            elif ind > key_indent and key in ("severity", "summary", "description", "runbook_url"):
                rule["keys"][key] = scalar_value(body, j, key)
        rules.append(rule)
    # A rule written in a shape this reader misses must not pass unchecked.
    loose = sum(1 for line in lines if re.search(r"(^|[\s{,])(alert|record):", line))
    if loose != len(rules):
        fail(str(path), f"found {loose} alert/record keys but read {len(rules)} rules: write each as `- alert: NAME` / `- record: NAME` on its own line")
    return rules


def read_tests(path: Path) -> tuple[list[dict], list[str], list[str]]:
    """alert_rule_test cases (alertname, line, how many alerts expected), promql_expr_test
    expressions, and rule_files."""
    lines = strip_comment_lines(path.read_text())
    cases = []
    exprs = []
    rule_files = []
    for i, line in enumerate(lines):
        if re.match(r"^rule_files:\s*$", line):
            for b in block_after(lines, i):
                fm = re.match(r"^\s*-\s+(\S+)\s*$", b)
                if fm:
                    rule_files.append(fm.group(1).strip("'\""))
        m = re.match(r"^(\s*)-\s+(eval_time|alertname|exp_alerts):", line)
        if m and "exp_labels" not in line:
            item = [line[: len(m.group(1))] + "  " + line[len(m.group(1)) + 2 :]] + block_after(lines, i)
            # Only the item's own keys (exp_alerts' list items are deeper).
            own = indent_of(item[0])
            keys = {}
            for j, b in enumerate(item):
                km = re.match(r"^(\s*)([A-Za-z_]+):", b)
                if km and len(km.group(1)) == own:
                    keys[km.group(2)] = j
            if "alertname" not in keys:
                continue
            name = scalar_value(item, keys["alertname"], "alertname")
            fired = None
            if "exp_alerts" in keys:
                j = keys["exp_alerts"]
                value = scalar_value(item, j, "exp_alerts")
                if value == "[]":
                    fired = 0
                elif value == "":
                    # The expected alerts: a list indented under exp_alerts, or level with it.
                    deeper = block_after(item, j)
                    fired = sum(1 for b in deeper if re.match(r"^\s*-\s", b) and indent_of(b) == own + 2)
                    if not fired:
                        for b in item[j + 1 :]:
                            if not b.strip() or indent_of(b) > own:
                                continue
                            if indent_of(b) < own or not re.match(r"^\s*-\s", b):
                                break
                            fired += 1
                else:
                    fail(f"{path}:{i + 1}", f"exp_alerts of {name} in a shape this check cannot read: {value!r}")
            else:
                fired = 0  # no exp_alerts: expects none
            cases.append({"alertname": name, "line": i + 1, "fired": fired})
        em = re.match(r"^\s*-\s+expr:|^\s*expr:", line)
        if em:
            exprs.append(scalar_value(lines, i, "expr") or "")
    return cases, exprs, rule_files


# ---------------------------------------------------------------------------------------------
# PromQL: the metric names an expression reads


def referenced_names(expr: str) -> list[str]:
    e = expr
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', e)  # string literals
    e = re.sub(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*", " ", e)  # Grafana variables
    e = re.sub(r"\{[^}]*\}", " ", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)  # ranges and subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r" \1 ", e)
    e = re.sub(r"\boffset\s+-?[0-9]+[a-z]+", " ", e)
    e = re.sub(r"(?<![A-Za-z0-9_:])(0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)(?![A-Za-z0-9_:])", " ", e)
    names = []
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        tok = m.group(0)
        if tok in KEYWORDS:
            continue
        if re.match(r"\s*\(", e[m.end() :]):
            continue  # a function
        names.append(tok)
    return names


def check_labels(where: str, expr: str, metrics: dict[str, str]) -> None:
    """The label names of each `metric{...}` selector against the metric's labels."""
    for m in re.finditer(r"(?<![A-Za-z0-9_:])([A-Za-z_][A-Za-z0-9_]*)\s*\{([^}]*)\}", expr):
        name, matchers = m.group(1), m.group(2)
        base = name
        if name not in metrics:
            base = next((name[: -len(x)] for x in HISTOGRAM_SUFFIXES if name.endswith(x)), name)
        if base not in metrics:
            continue  # unknown names are reported by check_expr; `up` has only target labels
        allowed = labels_of.get(base, set()) | {"job", "instance"}
        if name.endswith("_bucket") and metrics.get(base) == "histogram":
            allowed.add("le")
        blanked = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', matchers)
        for lm in re.finditer(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", blanked):
            if lm.group(1) not in allowed:
                fail(where, f"{name} has no label {lm.group(1)} (its labels: {', '.join(sorted(allowed))})")


def check_expr(where: str, expr: str, metrics: dict[str, str], records: set[str]) -> None:
    if not expr or not expr.strip():
        fail(where, "empty expression")
        return
    check_labels(where, expr, metrics)
    for name in referenced_names(expr):
        if ":" in name:
            if name not in records:
                fail(where, f"unknown recording rule {name} (not in recording.yml)")
            continue
        if name in BUILTIN_SERIES or name in metrics:
            if metrics.get(name) == "histogram":
                fail(where, f"histogram {name} has no series of its own: read {name}_bucket, _sum or _count")
            continue
        base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
        if base is not None and metrics.get(base) == "histogram":
            continue
        if base is not None and base in metrics:
            fail(where, f"{name}: {base} is a {metrics[base]}, not a histogram")
            continue
        if name + "_total" in metrics:
            fail(where, f"unknown metric {name} (the counter is {name}_total)")
            continue
        fail(where, f"unknown metric {name} (not in metrics.txt)")


# ---------------------------------------------------------------------------------------------
# RUNBOOK.md


def runbook_anchors(path: Path) -> tuple[set[str], list[str]]:
    anchors: set[str] = set()
    headings = []
    in_code = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            title = m.group(1)
            headings.append(title)
            # GitHub's slug: lower case, punctuation dropped, spaces to hyphens.
            slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
            anchors.add(slug)
        for am in re.finditer(r'<a\s+(?:id|name)="([^"]+)"', line):
            anchors.add(am.group(1))
    return anchors, headings


# ---------------------------------------------------------------------------------------------
# Dashboards


def dashboard_panels(panels: list) -> list[dict]:
    out = []
    for p in panels:
        if p.get("type") == "row":
            out.extend(dashboard_panels(p.get("panels", [])))
        else:
            out.append(p)
            out.extend(dashboard_panels(p.get("panels", [])))
    return out


def check_dashboard(path: Path, metrics: dict[str, str], records: set[str]) -> None:
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        fail(str(path), f"not valid JSON: {e}")
        return
    inputs = {i.get("name") for i in d.get("__inputs", [])}
    if "DS_PROMETHEUS" not in inputs:
        fail(str(path), "no DS_PROMETHEUS in __inputs")
    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    for name, v in variables.items():
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        m = re.match(r"^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$", q)
        inner = m.group(1) if m else q
        check_expr(f"{path}: variable {name}", inner, metrics, records)
        dashboard_exprs.append((f"dashboard:{path.stem}_variable_{name}:check", inner))
    panels = dashboard_panels(d.get("panels", []))
    if not panels:
        fail(str(path), "no panels")
    ids = set()
    for p in panels:
        title = p.get("title") or f"panel id {p.get('id')}"
        where = f"{path}: panel {title!r}"
        pid = p.get("id")
        if pid in ids:
            fail(where, f"panel id {pid} used twice")
        ids.add(pid)
        ds = p.get("datasource")
        uid = ds.get("uid") if isinstance(ds, dict) else ds
        if not uid:
            fail(where, "no datasource")
        elif uid != "${DS_PROMETHEUS}":
            fail(where, f"datasource {uid!r}, not ${{DS_PROMETHEUS}}")
        targets = p.get("targets") or []
        if not targets:
            fail(where, "no targets")
        for t in targets:
            expr = t.get("expr")
            if not expr:
                fail(where, f"target {t.get('refId')} has no expr")
                continue
            tds = t.get("datasource")
            tuid = tds.get("uid") if isinstance(tds, dict) else tds
            if tuid and tuid != "${DS_PROMETHEUS}":
                fail(where, f"target {t.get('refId')} datasource {tuid!r}, not ${{DS_PROMETHEUS}}")
            check_expr(f"{where} target {t.get('refId')}", expr, metrics, records)
            dashboard_exprs.append((f"dashboard:{path.stem}_panel_{pid}_{t.get('refId')}:check", expr))


# ---------------------------------------------------------------------------------------------


def write_dashboard_rules(path: Path) -> None:
    out = ["# Generated by tests/observability/check_refs.py: the dashboards' expressions, for promtool.", "groups:", "  - name: dashboard-expressions", "    rules:"]
    for where, expr in dashboard_exprs:
        e = re.sub(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}", "5m", expr)
        where = re.sub(r"[^A-Za-z0-9_:]", "_", where)
        out.append(f"      - record: {where}")
        out.append(f"        expr: {json.dumps(e)}")
    path.write_text("\n".join(out) + "\n")


def main() -> int:
    args = sys.argv[1:]
    rules_out = None
    if "--dashboard-rules" in args:
        i = args.index("--dashboard-rules")
        if i + 1 >= len(args):
            print("check_refs: --dashboard-rules needs a FILE", file=sys.stderr)
            return 2
        rules_out = Path(args[i + 1])
        del args[i : i + 2]
    root = Path(args[0] if args else "deploy/observability")
    needed = ["metrics.txt", "alerts.yml", "recording.yml", "alerts_test.yml", "RUNBOOK.md"]
    missing = [n for n in needed if not (root / n).is_file()]
    if missing:
        print(f"check_refs: missing in {root}: {', '.join(missing)}", file=sys.stderr)
        return 1

    metrics = read_metrics(root / "metrics.txt")
    recording = read_rules(root / "recording.yml")
    alerting = read_rules(root / "alerts.yml")
    records = {r["name"] for r in recording if r["kind"] == "record"}
    for f, rules in (("recording.yml", recording), ("alerts.yml", alerting)):
        for r in rules:
            where = f"{root / f}:{r['line']}: {r['kind']} {r['name']}"
            if f == "recording.yml" and r["kind"] != "record":
                fail(where, "an alert in the recording rules file")
            if f == "alerts.yml" and r["kind"] != "alert":
                fail(where, "a recording rule in the alerts file")
            if r["kind"] == "record" and not re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", r["name"]):
                fail(where, "recording rule name is not level:metric:operations")
            if "expr" not in r["keys"]:
                fail(where, "no expr")
            else:
                check_expr(where, r["keys"]["expr"], metrics, records)

    alerts = {r["name"]: r for r in alerting if r["kind"] == "alert"}
    if len(alerts) != len([r for r in alerting if r["kind"] == "alert"]):
        fail(str(root / "alerts.yml"), "an alert name is used twice")
    anchors, headings = runbook_anchors(root / "RUNBOOK.md")
    cases, test_exprs, rule_files = read_tests(root / "alerts_test.yml")
    for f in ("recording.yml", "alerts.yml"):
        if f not in rule_files:
            fail(str(root / "alerts_test.yml"), f"rule_files does not load {f}")

    for name, r in alerts.items():
        where = f"{root / 'alerts.yml'}:{r['line']}: alert {name}"
        k = r["keys"]
        if not k.get("for"):
            fail(where, "no `for:`")
        if k.get("severity") not in SEVERITIES:
            fail(where, f"severity {k.get('severity')!r}, not one of {', '.join(sorted(SEVERITIES))}")
        for a in ("summary", "description"):
            if not k.get(a):
                fail(where, f"no {a} annotation")
        url = k.get("runbook_url") or ""
        path, _, anchor = url.partition("#")
        if path != RUNBOOK_PATH or not anchor:
            fail(where, f"runbook_url {url!r} is not {RUNBOOK_PATH}#<anchor>")
        elif anchor not in anchors:
            fail(where, f"runbook_url anchor #{anchor} is not a section of RUNBOOK.md")
        own = [c for c in cases if c["alertname"] == name]
        if not any(c["fired"] for c in own):
            fail(where, "no test case in alerts_test.yml where it fires")
        if not any(c["fired"] == 0 for c in own):
            fail(where, "no test case in alerts_test.yml where it stays quiet")
    for c in cases:
        if c["alertname"] not in alerts:
            fail(f"{root / 'alerts_test.yml'}:{c['line']}", f"tests alert {c['alertname']}, which alerts.yml does not define")
    for h in headings:
        if re.fullmatch(r"Agentplane[A-Za-z0-9]+", h) and h not in alerts:
            fail(str(root / "RUNBOOK.md"), f"section {h} names no alert of alerts.yml")
    for rec in sorted(records):
        if not any(re.search(r"(?<![A-Za-z0-9_:])" + re.escape(rec) + r"(?![A-Za-z0-9_:])", e) for e in test_exprs):
            fail(str(root / "alerts_test.yml"), f"recording rule {rec} has no promql_expr_test")

    dashboards = sorted((root / "dashboards").glob("*.json"))
    if not dashboards:
        fail(str(root / "dashboards"), "no dashboard")
    for d in dashboards:
        check_dashboard(d, metrics, records)

    if rules_out is not None:
        write_dashboard_rules(rules_out)
    if errors:
        print(f"check_refs: {len(errors)} problem(s):", file=sys.stderr)
        for e in errors:
            print(f"  {e}", file=sys.stderr)
        return 1
    print(
        f"check_refs: {len(metrics)} metrics, {len(records)} recording rules, {len(alerts)} alerts "
        f"({len(cases)} test cases), {len(dashboards)} dashboard(s): all references resolve"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
