"""The lexical statement's own cost, without the origin: pgbench runs the BM25 top-50 statement
hybrid_search sends (same SQL, the tenant filter, one SciFact claim per run, 100 claims picked
at random) against the benchmark's database, at 1 and 16 clients. Used by scripts/bench-search.

    python3 bench/lexical_floor.py PGBENCH DATA_DIR QUERIES TENANT DURATION
"""

import json
import os
import re
import subprocess
import sys
import tempfile

pgbench, data_dir, queries, tenant, duration = sys.argv[1:6]
creds = json.load(open(os.path.join(data_dir, "pg", "credentials.json")))
claims = [json.loads(line)["text"] for line in open(queries) if line.strip()][:100]  # pgbench takes at most 128 scripts

# hybrid_search's BM25 statement (origin/src/data/search/mod.rs), with its parameters written in.
# As the admin role, which row-level security does not filter: the tenant predicate is the one
# the origin sends, and the figure is pg_search's alone.
STATEMENT = (
    "SELECT 0::int2 AS side, id, pdb.score(row_key)::float8 AS score FROM documents "
    "WHERE (title || ' ' || content) ||| {q} AND tenant_id = '{t}' "
    "ORDER BY pdb.score(row_key) DESC LIMIT 50;\n"
)


def literal(text):
    return "'" + text.replace("'", "''") + "'"


with tempfile.TemporaryDirectory() as scripts:
    files = []
    for i, claim in enumerate(claims):
        path = os.path.join(scripts, f"q{i}.sql")
        with open(path, "w") as f:
            f.write(STATEMENT.format(q=literal(claim), t=tenant))
        files += ["-f", path]
    env = dict(os.environ, PGPASSWORD=creds["admin_password"])
    for clients in (1, 16):
        out = subprocess.run(
            [pgbench, "-h", "127.0.0.1", "-p", str(creds["port"]), "-U", "agentplane_admin", "agentplane",
             "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, 2)), "-T", duration,
             "--no-vacuum", *files],
            env=env, capture_output=True, text=True, check=True,
        ).stdout
        tps = re.search(r"tps = ([0-9.]+)", out)
        lat = re.search(r"latency average = ([0-9.]+) ms", out)
        print(f"BM25 statement alone (pgbench), {clients} client(s): "
              f"{float(tps.group(1)):.1f} statements/s, mean {float(lat.group(1)):.2f} ms")
