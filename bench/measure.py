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

Each pgbench run is also charged its CPU time: the server's, read from the
postmaster's count of its exited children once the run's backends are gone,
and pgbench's own. CPU time per transaction moves much less than throughput
when other work shares the machine.
"""

import argparse
import json
import os
import pathlib
import random
import re
import resource
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
    # The echo leaves out the per-round lists and the scripts.
    brief = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in obj.items()
             if not isinstance(v, list) and k not in ("a", "b")}
    print("   ", json.dumps(brief), flush=True)


def connect(user):
    conn = psycopg2.connect(host=DIR, port=PORT, user=user, dbname=DB)
    conn.autocommit = True
    return conn


def postmaster_pid():
    return int(pathlib.Path(DIR, "data", "postmaster.pid").read_text().split()[0])


def proc_stat(pid):
    """Fields of /proc/PID/stat after the command name (field 3 is index 0)."""
    return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def postmaster_children():
    """Process ids of the server's backends and helper processes."""
    parent, kids = str(postmaster_pid()), set()
    for d in pathlib.Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if proc_stat(d.name)[1] == parent:
                    kids.add(d.name)
            except (FileNotFoundError, ProcessLookupError):
                pass
    return kids


def postmaster_children_cpu():
    """CPU seconds of the server's exited children (backends), as the
    postmaster's cutime + cstime: a backend's time counts once it has exited
    and been reaped, which pgbench's connections do at the end of a run."""
    fields = proc_stat(postmaster_pid())
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def wait_for_exit(before):
    """Waits until every server process started since `before` has exited
    and been reaped, so that its CPU time is counted."""
    for _ in range(1000):
        if not postmaster_children() - before:
            return
        time.sleep(0.005)
    sys.exit("backends of a finished pgbench run did not exit")


def pgbench(script, user, clients, secs, defines):
    """One pgbench run: transactions per second, and CPU microseconds per
    transaction of the server's backends and of pgbench. Fails on any error."""
    cmd = [str(BIN / "pgbench"), "-n", "-M", "prepared", "-h", DIR, "-p", str(PORT),
           "-U", user, "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(secs),
           "-f", str(BENCH / script)]
    for d in defines:
        cmd += ["-D", d]
    cmd.append(DB)
    before = postmaster_children()
    server0 = postmaster_children_cpu()
    client0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True)
    client1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wait_for_exit(before)
    server_cpu = postmaster_children_cpu() - server0
    client_cpu = (client1.ru_utime + client1.ru_stime) - (client0.ru_utime + client0.ru_stime)

    text = out.stdout + out.stderr
    failed = re.search(r"number of failed transactions: (\d+)", text)
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", text)
    txs = re.search(r"number of transactions actually processed: (\d+)", text)
    if out.returncode != 0 or tps is None or (failed and int(failed.group(1)) > 0):
        sys.exit(f"pgbench {script} as {user} failed:\n{text}")
    n = int(txs.group(1))
    return {"tps": float(tps.group(1)), "server_us": server_cpu / n * 1e6,
            "client_us": client_cpu / n * 1e6}


def side(spec):
    script, user = spec.split(":")
    return script, user


def ab(args):
    """Runs A and B alternately (ABBA order) and records the ratio of median
    throughputs, and the ratio of median CPU time per transaction."""
    a, b = side(args.a), side(args.b)
    for script, user in (a, b):
        pgbench(script, user, args.clients, WARMUP_SECS, args.define)
    runs = {"a": [], "b": []}
    for r in range(args.rounds):
        order = (("a", a), ("b", b)) if r % 2 == 0 else (("b", b), ("a", a))
        for key, (script, user) in order:
            runs[key].append(pgbench(script, user, args.clients, args.secs, args.define))
    tps = {k: [r["tps"] for r in v] for k, v in runs.items()}
    cpu = {k: [r["server_us"] + r["client_us"] for r in v] for k, v in runs.items()}
    server = {k: [r["server_us"] for r in v] for k, v in runs.items()}
    ma, mb = statistics.median(tps["a"]), statistics.median(tps["b"])
    pairs = [x / y for x, y in zip(tps["a"], tps["b"])]
    record({"figure": args.name, "clients": args.clients, "a": args.a, "b": args.b,
            "secs": args.secs, "rounds": args.rounds, "a_tps": tps["a"], "b_tps": tps["b"],
            "a_median": ma, "b_median": mb, "ratio": ma / mb,
            "round_ratio_min": min(pairs), "round_ratio_max": max(pairs),
            "a_cpu_rounds": cpu["a"], "b_cpu_rounds": cpu["b"],
            "a_cpu_us": statistics.median(cpu["a"]), "b_cpu_us": statistics.median(cpu["b"]),
            "a_server_us": statistics.median(server["a"]),
            "b_server_us": statistics.median(server["b"]),
            "cpu_ratio": statistics.median(cpu["b"]) / statistics.median(cpu["a"]),
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
