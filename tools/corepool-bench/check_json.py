#!/usr/bin/env python3
"""ctest check of corepool-bench: run a quick subset, then verify the JSON report.

usage: check_json.py CORPOOL_BENCH OUTDIR
Runs `corepool-bench --quick --reps 5 --filter '^(W1|W3|A1|A2/T=1|A3|A5/P=2)/|^W2/selftest'
--json OUTDIR/quick.json` with CPB_SELFTEST=1 and checks that every contender the build has
(status "ok") that runs one of those workloads has a result row for each, with positive finite
median/min/max, min <= median <= max and 5 to 15 samples; that every contender reported
missing or failed says why; and that the self-test contender, whose W2 never returns from a
get after 16 bursts, is cut off and reported as stalled with exactly the 16 x 256 pairs it
completed, while the run still finishes.
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
cmd = [bench, "--quick", "--duration", "0.005", "--reps", "5", "--filter",
       r"^(W1|W3|A1|A2/T=1|A3|A5/P=2)/|^W2/selftest", "--out", os.path.join(outdir, "results"),
       "--json", jpath]
print("running: CPB_SELFTEST=1", " ".join(cmd), flush=True)
env = dict(os.environ, CPB_SELFTEST="1")
p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=280,
                   env=env)
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
stalled = {}
for x in r["results"]:
    rows.setdefault(x["contender"], {})[x["task"]] = x
    if not isinstance(x.get("spread"), (int, float)) or x["spread"] < 0:
        errors.append("%s %s: spread missing or negative" % (x["contender"], x["task"]))
    if x.get("stalled"):
        stalled[(x["contender"], x["task"])] = x
        if not x["samples"]:
            continue
    for k in ("median", "min", "max"):
        v = x[k]
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            errors.append("%s %s: %s = %r is not positive and finite" % (x["contender"], x["task"], k, v))
    if not (x["min"] <= x["median"] <= x["max"]):
        errors.append("%s %s: min/median/max out of order" % (x["contender"], x["task"]))
    # A stalled row keeps the repetitions that finished before the stall (that task is not run
    # again for that contender); on a loaded machine any pinned W3 pair may stall, so only the
    # self-test's stall is required below.
    lo = 1 if x.get("stalled") else 5
    if not lo <= len(x["samples"]) <= 15:
        errors.append("%s %s: %d samples, expected %d to 15" % (x["contender"], x["task"], len(x["samples"]), lo))

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

st = stalled.get(("selftest-stall", "W2"))
if st is None:
    errors.append("selftest-stall W2 was not reported as stalled")
elif st.get("stalled_pairs") != 16 * 256:
    errors.append("selftest-stall W2: stalled_pairs = %r, expected %d" % (st.get("stalled_pairs"), 16 * 256))
for (name, task), x in stalled.items():
    if name != "selftest-stall":
        print("WARN: %s %s stalled after %s pairs" % (name, task, x.get("stalled_pairs")))

if built == 0:
    errors.append("no contender was run")
if errors:
    print("\n".join("FAIL: " + e for e in errors))
    sys.exit(1)
print("OK: %d contenders, %d rows" % (built, len(r["results"])))
