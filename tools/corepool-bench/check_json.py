#!/usr/bin/env python3
"""ctest check of corepool-bench: run a quick subset, then verify the JSON report.

usage: check_json.py CORPOOL_BENCH OUTDIR
Runs `corepool-bench --quick --reps 5 --filter '^(W1|W3|A1|A2/T=1|A3|A5/P=2)/' --json OUTDIR/quick.json`
and checks that every contender the build has (status "ok") that runs one of those
workloads has a result row for each, with positive finite median/min/max and
min <= median <= max, and that every contender reported missing or failed says why.
"""
import json
import math
import os
import subprocess
import sys

bench, outdir = sys.argv[1], sys.argv[2]
os.makedirs(outdir, exist_ok=True)
jpath = os.path.join(outdir, "quick.json")
if os.path.exists(jpath):
    os.remove(jpath)
tasks = ["W1", "W3", "A1", "A2/T=1", "A3", "A5/P=2"]
cmd = [bench, "--quick", "--duration", "0.005", "--reps", "5", "--filter", r"^(W1|W3|A1|A2/T=1|A3|A5/P=2)/",
       "--out", os.path.join(outdir, "results"), "--json", jpath]
print("running:", " ".join(cmd), flush=True)
p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=280)
print(p.stdout)
if p.returncode != 0:
    sys.exit("corepool-bench exited with status %d" % p.returncode)

with open(jpath) as f:
    r = json.load(f)

errors = []
for key in ("cpu_model", "cores_online", "kernel", "glibc", "compiler", "cpu_id_source", "rseq"):
    if not r["machine"].get(key):
        errors.append("machine description lacks " + key)

rows = {}
for x in r["results"]:
    rows.setdefault(x["contender"], {})[x["task"]] = x
    for k in ("median", "min", "max"):
        v = x[k]
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            errors.append("%s %s: %s = %r is not positive and finite" % (x["contender"], x["task"], k, v))
    if not (x["min"] <= x["median"] <= x["max"]):
        errors.append("%s %s: min/median/max out of order" % (x["contender"], x["task"]))
    if len(x["samples"]) != 5:
        errors.append("%s %s: %d samples, expected 5" % (x["contender"], x["task"], len(x["samples"])))

built = 0
for c in r["contenders"]:
    wanted = [t for t in tasks if t.split("/")[0] in c["workloads"]]
    if c["status"] == "ok":
        built += 1
        for t in wanted:
            if t not in rows.get(c["name"], {}):
                errors.append("contender %s was built but has no row for %s" % (c["name"], t))
    elif c["status"] in ("missing", "failed"):
        if not c["reason"]:
            errors.append("contender %s is %s without a reason" % (c["name"], c["status"]))
        if c["status"] == "failed":
            if "rte_eal_init" in c["reason"]:
                # The environment refused DPDK's EAL (no /var/run access, seccomp, ...): the
                # report says so, which is what a missing peer should look like.
                print("WARN: %s could not start here: %s" % (c["name"], c["reason"]))
            else:
                errors.append("contender %s failed: %s" % (c["name"], c["reason"]))
    elif wanted:
        errors.append("contender %s runs %s but is '%s'" % (c["name"], wanted, c["status"]))

if built == 0:
    errors.append("no contender was run")
if errors:
    print("\n".join("FAIL: " + e for e in errors))
    sys.exit(1)
print("OK: %d contenders, %d rows" % (built, len(r["results"])))
