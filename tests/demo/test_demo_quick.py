#!/usr/bin/python3
"""`headroom demo --quick` end to end, as CI runs it: it exits 0, the plan and the validation are
written, the report renders in headless Chromium (tests/report/render_report.py), and nothing
it started is left running: no PostgreSQL of its folder, no headroom-service, no child."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def processes_mentioning(text):
    """pids whose command line mentions `text` (this test's own process excluded)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            found.append((int(pid), cmd.strip()))
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--headroom", required=True)
    ap.add_argument("--render", required=True, help="tests/report/render_report.py")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="headroom-demo-test-") as d:
        started = time.monotonic()
        r = subprocess.run([a.headroom, "demo", "--quick", "--dir", d], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=900)
        print(r.stdout[-6000:])
        print(f"headroom demo --quick: exit {r.returncode} in {time.monotonic() - started:.0f} s")
        if r.returncode != 0:
            fail(f"headroom demo --quick exited {r.returncode}")
        plan = json.load(open(os.path.join(d, "plan.json")))
        if plan.get("format") != "headroom-plan/1":
            fail(f"plan.json is not a plan: format {plan.get('format')!r}")
        if plan["feasible"] and not (isinstance(plan["instances"], int) and plan["instances"] >= 2):
            fail(f"a feasible plan with N+1 needs at least 2 instances, got {plan['instances']!r}")
        if not plan["feasible"] and not plan.get("reason"):
            fail("an infeasible plan must say why")
        validation = json.load(open(os.path.join(d, "validation.json")))
        if len(validation["cases"]) != 1 or len(validation["cases"][0]["measured"]["quantile"]) != 1:
            fail("the recommendation must be checked live exactly once")
        for line in ("== summary", "plan ", "live check", "report "):
            if line not in r.stdout:
                fail(f"the summary lacks '{line}'")
        leftovers = processes_mentioning(d)
        if leftovers:
            fail(f"processes left running: {leftovers}")
        rr = subprocess.run(["/usr/bin/python3", a.render, "--headroom", a.headroom, "--html",
                             os.path.join(d, "report.html"), "--out-dir", os.path.join(d, "render")])
        if rr.returncode not in (0, 77):
            fail("the demo's report did not render")
        if rr.returncode == 77:
            sys.exit(77)
    print("PASS: the demo ran, planned, checked live, reported, and left nothing running")


if __name__ == "__main__":
    main()
