"""Measurements for scripts/bench.sh. Each subcommand appends one JSON object
per figure to the results file that bench/report.py turns into
docs/benchmarks.md.

Where it finds the server, from the environment that scripts/bench.sh sets:
BENCH_BIN (PostgreSQL binaries), BENCH_DIR (server folder with its socket),
BENCH_PORT, BENCH_RESULTS (results file, JSON lines).

    measure.py ab NAME A_SCRIPT:A_USER B_SCRIPT:B_USER --clients C --rounds R --secs T [-D k=v]
    measure.py rotate --secrets N --rep I
    measure.py memory --reads N
    measure.py record JSON
"""

import argparse
import json
import os
import pathlib
import random
import re
import statistics
import subprocess
import sys
import time

import psycopg2

BENCH = pathlib.Path(__file__).resolve().parent
BIN = pathlib.Path(os.environ.get("BENCH_BIN", "/usr/lib/postgresql/15/bin"))
DIR = os.environ.get("BENCH_DIR", "/tmp/cortex_vault_bench")
PORT = int(os.environ.get("BENCH_PORT", "5432"))
RESULTS = pathlib.Path(os.environ.get("BENCH_RESULTS", f"{DIR}/results.jsonl"))
DB = "bench"

# Seconds each side runs before the measured rounds: prepares statements,
# fills caches, so that the first measured round is not the cold one.
WARMUP_SECS = 2


def record(obj):
    """Appends one figure to the results file and echoes it."""
    with RESULTS.open("a") as f:
        f.write(json.dumps(obj) + "\n")
    print("   ", json.dumps(obj), flush=True)


def connect(user):
    conn = psycopg2.connect(host=DIR, port=PORT, user=user, dbname=DB)
    conn.autocommit = True
    return conn


def pgbench(script, user, clients, secs, defines):
    """Transactions per second of one pgbench run; fails on any error."""
    cmd = [str(BIN / "pgbench"), "-n", "-M", "prepared", "-h", DIR, "-p", str(PORT),
           "-U", user, "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(secs),
           "-f", str(BENCH / script)]
    for d in defines:
        cmd += ["-D", d]
    cmd.append(DB)
    out = subprocess.run(cmd, capture_output=True, text=True)
    text = out.stdout + out.stderr
    failed = re.search(r"number of failed transactions: (\d+)", text)
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", text)
    if out.returncode != 0 or tps is None or (failed and int(failed.group(1)) > 0):
        sys.exit(f"pgbench {script} as {user} failed:\n{text}")
    return float(tps.group(1))


def side(spec):
    script, user = spec.split(":")
    return script, user


def ab(args):
    """Runs A and B alternately (ABBA order) and records the ratio of medians."""
    a, b = side(args.a), side(args.b)
    for script, user in (a, b):
        pgbench(script, user, args.clients, WARMUP_SECS, args.define)
    tps = {"a": [], "b": []}
    for r in range(args.rounds):
        order = (("a", a), ("b", b)) if r % 2 == 0 else (("b", b), ("a", a))
        for key, (script, user) in order:
            tps[key].append(pgbench(script, user, args.clients, args.secs, args.define))
    ma, mb = statistics.median(tps["a"]), statistics.median(tps["b"])
    pairs = [x / y for x, y in zip(tps["a"], tps["b"])]
    record({"figure": args.name, "clients": args.clients, "a": args.a, "b": args.b,
            "secs": args.secs, "a_tps": tps["a"], "b_tps": tps["b"],
            "a_median": ma, "b_median": mb, "ratio": ma / mb,
            "round_ratio_min": min(pairs), "round_ratio_max": max(pairs),
            **dict(d.split("=", 1) for d in args.define)})


def rotate(args):
    """Times one rotate_master_key() as the administrator, in a new backend,
    with the shared buffers it hit and read, and checks that every
    organization key is now wrapped by one master key version."""
    conn = connect("bench_admin")
    cur = conn.cursor()
    start = time.perf_counter()
    cur.execute("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) "
                "SELECT cortex_vault.rotate_master_key()")
    secs = time.perf_counter() - start
    plan = cur.fetchone()[0][0]
    conn.close()
    cur = connect("postgres").cursor()
    cur.execute("SELECT count(*), count(DISTINCT master_fingerprint) FROM cortex_vault.org_keys")
    orgs, versions = cur.fetchone()
    if versions != 1:
        sys.exit(f"after rotate_master_key() {versions} master key versions wrap org keys")
    record({"figure": "rotate_master_key", "secrets": args.secrets, "rep": args.rep,
            "orgs": orgs, "seconds": secs, "execution_ms": plan["Execution Time"],
            "shared_hit": plan["Plan"]["Shared Hit Blocks"],
            "shared_read": plan["Plan"]["Shared Read Blocks"]})


def backend_memory(pid):
    """Resident memory of a backend in KiB: total, private, shared, proportional."""
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    mem = {k: int(re.search(rf"^{k}:\s+(\d+) kB", status, re.M).group(1))
           for k in ("VmRSS", "RssAnon", "RssShmem")}
    rollup = pathlib.Path(f"/proc/{pid}/smaps_rollup").read_text()
    mem["Pss"] = int(re.search(r"^Pss:\s+(\d+) kB", rollup, re.M).group(1))
    return mem


def memory(args):
    """Backend memory of one reader session across N reads, against a fresh one."""
    conn = connect("bench_reader")
    cur = conn.cursor()
    cur.execute("SELECT pg_backend_pid()")
    fresh_pid = cur.fetchone()[0]
    fresh = backend_memory(fresh_pid)
    cur.execute("SELECT org::text, dep, sid::text FROM bench.ids")
    ids = cur.fetchall()
    random.shuffle(ids)

    # One round trip per read transaction, as an agent runtime sends it.
    query = ("BEGIN; SELECT set_config('cortex_vault.org_id', %s, true), "
             "set_config('cortex_vault.deployment_id', %s, true); "
             "SELECT cortex_vault.read_secret(%s::uuid); COMMIT")
    samples = [{"reads": 0, **fresh}]
    step = max(args.reads // 10, 1)
    orgs = set()
    for i in range(1, args.reads + 1):
        org, dep, sid = ids[i % len(ids)]
        orgs.add(org)
        cur.execute(query, (org, dep, sid))
        if i % step == 0 or i == 1000:
            samples.append({"reads": i, **backend_memory(fresh_pid)})
    conn.close()
    record({"figure": "backend_memory", "reads": args.reads, "orgs": len(orgs),
            "samples": sorted(samples, key=lambda s: s["reads"])})


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("ab")
    s.add_argument("name")
    s.add_argument("a")
    s.add_argument("b")
    s.add_argument("--clients", type=int, default=1)
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--secs", type=int, default=5)
    s.add_argument("-D", dest="define", action="append", default=[])
    s = sub.add_parser("rotate")
    s.add_argument("--secrets", type=int, required=True)
    s.add_argument("--rep", type=int, default=1)
    s = sub.add_parser("memory")
    s.add_argument("--reads", type=int, default=100_000)
    s = sub.add_parser("record")
    s.add_argument("json")
    args = p.parse_args()
    if args.cmd == "ab":
        ab(args)
    elif args.cmd == "rotate":
        rotate(args)
    elif args.cmd == "memory":
        memory(args)
    else:
        record(json.loads(args.json))


if __name__ == "__main__":
    main()
