"""What the deploy checks print: a line per check (`ok` or `FAIL` with what was wrong), then
`N passed, N failed`; `finish` exits 1 if any failed. Shared by check_manifests.py and
check_edges.py, whose totals tests/deploy/run adds up."""

import sys

_counts = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    if ok:
        _counts["passed"] += 1
        print(f"ok    {name}")
    else:
        _counts["failed"] += 1
        print(f"FAIL  {name}: {detail!s}")


def check_none(name, offenders):
    """Passes when nothing was found wrong; else names what was."""
    check(name, not offenders, "; ".join(map(str, offenders)))


def finish():
    print(f"{_counts['passed']} passed, {_counts['failed']} failed")
    sys.exit(1 if _counts["failed"] else 0)
