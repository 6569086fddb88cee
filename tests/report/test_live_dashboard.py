#!/usr/bin/python3
"""`headroom report --prometheus`: a real Prometheus (scripts/observe, node_exporter's job named
`host` by --node-job) scraping two real headroom-service instances (on the `postgres` fixture's
database) under 25 s of load at 50 req/s each; the report (--node-job host) then has the six
dashboard panels with data, the 100 req/s summed over both instances and the model run at each
one's share, checked by parsing its HTML and SVG; with a job nothing scrapes, every service
panel says "no data for <metric>"; with node_exporter's default job name, which nothing scrapes
here, the machine's CPU says so; with nothing listening at the URL, one line on stderr and exit 1.
Exit 77 (CTest: skipped) without Debian's prometheus."""
import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

PANELS = ["Request rate by status", "Latency", "p99 of each phase", "Pool connections",
          "Pool events", "CPU"]


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def panels(html):
    """Each live panel's title -> its <svg> text."""
    return dict(re.findall(r"<div><h3>([^<]+)</h3>\n(<svg.*?</svg>)", html, re.S))


def solid_lines(svg):
    return [p for p in re.findall(r"<path [^>]*>", svg) if "stroke-dasharray" not in p]


def table_row(html, panel, name):
    """(live, model) cells of the comparison table's row for one series."""
    m = re.search(r"<tr><td>" + re.escape(panel) + r"</td><td>" + re.escape(name) +
                  r"</td><td>([^<]*)</td><td>([^<]*)</td></tr>", html)
    return m.groups() if m else None


def number(cell):
    return float(re.match(r"[0-9.]+", cell).group(0))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--headroom", required=True)
    ap.add_argument("--service", required=True, help="the headroom-service binary")
    ap.add_argument("--source", required=True, help="the project's folder (scripts/, tests/)")
    ap.add_argument("--pg-dir", required=True, help="the postgres fixture's cluster")
    ap.add_argument("--out-dir", required=True)
    a = ap.parse_args()
    if not os.access("/usr/bin/prometheus", os.X_OK):
        print("SKIP: /usr/bin/prometheus is not installed (scripts/setup installs it)")
        sys.exit(77)
    os.makedirs(a.out_dir, exist_ok=True)
    fixtures = os.path.join(a.source, "tests", "report", "fixtures")
    observe = os.path.join(a.source, "scripts", "observe")
    dsn = subprocess.run([os.path.join(a.source, "scripts", "pg"), "dsn", "--dir", a.pg_dir],
                         check=True, stdout=subprocess.PIPE, text=True).stdout.strip()

    def report(out, *extra):
        # Two coarse predicted points: the live window is under test here, not the sweep.
        return subprocess.run([a.headroom, "report", "--calibration",
                               os.path.join(fixtures, "calibration.json"), "--points", "2",
                               "--precision", "0.2", "--threads", "2",
                               "--out", os.path.join(a.out_dir, out)] + list(extra),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=600)

    # Nothing listens there: the check needs no stack, so it runs first.
    closed = f"http://127.0.0.1:{free_port()}"
    r = report("unreachable.html", "--prometheus", closed)
    lines = r.stderr.splitlines()
    if r.returncode != 1 or len(lines) != 1 or not lines[0].startswith("headroom report: ") \
            or closed not in lines[0]:
        fail(f"unreachable Prometheus: exit {r.returncode}, stderr {r.stderr!r} (expected one "
             f"line naming {closed}, exit 1)")
    print("unreachable: " + lines[0])

    services = [subprocess.Popen([a.service, "--dsn", dsn, "--port", "0"],
                                 stdout=subprocess.PIPE, text=True) for _ in range(2)]
    stack = tempfile.mkdtemp(prefix="observe-", dir=a.out_dir)
    try:
        urls = []
        for service in services:
            m = re.search(r"listening on (http://\S+)", service.stdout.readline())
            if not m:
                fail("headroom-service did not say where it listens")
            urls.append(m.group(1))
        targets = [arg for url in urls for arg in ("--service", url[len("http://"):])]
        subprocess.run([observe, "start", *targets, "--node-job", "host", "--dir", stack],
                       check=True, stdout=subprocess.DEVNULL)
        prometheus = open(os.path.join(stack, "prometheus.url")).read().strip()
        start = time.time()
        # 50 req/s at each instance, at once: 100 req/s over the job.
        loads = [subprocess.Popen([a.headroom, "load", "--target", url + "/", "--method", "POST",
                                   "--header", "Content-Type: application/json", "--body",
                                   os.path.join(a.source, "tests", "fixtures", "age_match.json"),
                                   "--rate", "50", "--duration", "25s", "--arrivals", "poisson",
                                   "--seed", str(i + 1)], stdout=subprocess.DEVNULL)
                 for i, url in enumerate(urls)]
        for load in loads:
            if load.wait(timeout=120) != 0:
                fail(f"headroom load exited {load.returncode}")
        time.sleep(3)  # two more scrapes, so the last points see the whole load
        window = ["--prometheus", prometheus, "--from", str(int(start) - 10), "--to", "now",
                  "--node-job", "host"]

        r = report("live.html", *window)
        if r.returncode != 0:
            fail(f"headroom report --prometheus: exit {r.returncode}: {r.stderr[-500:]}")
        html = open(os.path.join(a.out_dir, "live.html"), encoding="utf-8").read()
        found = panels(html)
        if list(found) != PANELS:
            fail(f"live panels {list(found)}, expected {PANELS}")
        if html.count("<svg") != 3 + len(PANELS):
            fail(f"{html.count('<svg')} charts, expected 3 of the calibration + {len(PANELS)}")
        for title, svg in found.items():
            if "no data" in svg:
                fail(f"panel {title!r} says no data: " + re.findall(r"no data for [^<]*", svg)[0])
        # Lines each panel must have: one per status code answered (200, and 503 for requests
        # that waited out --wait-timeout when the machine is crowded), both quantiles, the five
        # phases, the three pool gauges and three counters, the process's and the machine's CPU.
        codes = re.findall(r"<tr><td>Request rate by status</td><td>code (\d+)</td>", html)
        if "200" not in codes:
            fail(f"no code 200 in the request rate panel (codes {codes})")
        expected = {"Request rate by status": len(codes), "Latency": 2, "p99 of each phase": 5,
                    "Pool connections": 3, "Pool events": 3, "CPU": 2}
        for title, n in expected.items():
            if len(solid_lines(found[title])) != n:
                fail(f"panel {title!r}: {len(solid_lines(found[title]))} lines, expected {n}")
        if "over 2 instances, each its share" not in html:
            fail("the live section does not say the model ran at each of 2 instances' share")
        if "(machine: job <code>host</code>)" not in html:
            fail("the live section does not name node_exporter's job host")
        # The live rate: 100 req/s offered, Poisson. A point's rate counts about 400 requests
        # (4 s look-back), so one point is within 5 % (one standard deviation); the median of
        # about 25 busy points, and a 1 s scrape's timing, stay within 10 %.
        live, model = table_row(html, "Request rate by status", "code 200")
        if abs(number(live) - 100) > 10:
            fail(f"live request rate {live}, expected 100 req/s within 10 %")
        # The model ran at each instance's half of that rate, and its throughput is drawn for
        # both: the rate it was given (stable at 50 req/s on two cores: the fixture's knee is
        # far above), within its 20 % precision.
        if model == "-" or abs(number(model) - number(live)) > 0.2 * number(live):
            fail(f"model throughput {model} against live {live}")
        # Read from the one histogram, the live p99 is at least its p50 at every point, so
        # their medians keep that order; no bound on the value itself: on a crowded two-core
        # machine this load's p99 ranged from 0.8 to 4.9 s between runs (dials waiting for CPU).
        live_p50, model_p50 = table_row(html, "Latency", "p50")
        live_p99, model_p99 = table_row(html, "Latency", "p99")
        if not (0 < number(live_p50) <= number(live_p99)) or "-" in (model_p50, model_p99):
            fail(f"latency: live p50 {live_p50}, p99 {live_p99}; model {model_p50}, {model_p99}")
        dashed = [p for p in re.findall(r"<path [^>]*>", found["Latency"])
                  if "stroke-dasharray" in p]
        if len(dashed) != 2:
            fail(f"{len(dashed)} model levels on the latency panel, expected p50 and p99")
        if "SLO: p99 &lt; 60ms" not in found["Latency"]:
            fail("the latency panel has no SLO line")
        print(f"live panels: rate {live} (model {model}), p99 {live_p99} (model {model_p99})")

        # A job Prometheus never scraped: every service metric is missing, said on its panel;
        # the machine's CPU (job host) is still there.
        r = report("missing.html", *window, "--job", "no-such-job")
        if r.returncode != 0:
            fail(f"missing series: exit {r.returncode}: {r.stderr[-500:]}")
        html = open(os.path.join(a.out_dir, "missing.html"), encoding="utf-8").read()
        found = panels(html)
        for title, metric in [("Request rate by status", "http_request_seconds"),
                              ("Latency", "http_request_seconds"),
                              ("p99 of each phase", "headroom_phase_seconds"),
                              ("Pool connections", "headroom_pool_open"),
                              ("Pool events", "headroom_pool_dials_total"),
                              ("CPU", "process_cpu_seconds_total")]:
            if f">no data for {metric}<" not in found.get(title, ""):
                fail(f"panel {title!r} does not say 'no data for {metric}'")
        if len(solid_lines(found["CPU"])) != 1:
            fail("the CPU panel lost the machine's line (node_exporter's job is not the service's)")
        if "No request arrived in the window" not in html:
            fail("the missing-series page does not say that no request arrived")
        print("missing series: every service panel says no data")

        # node_exporter's default job name, which this stack does not use: the machine's CPU is
        # missing, said on its panel, and the service's own line stays.
        r = report("node-job.html", *window[:-2])
        if r.returncode != 0:
            fail(f"default node job: exit {r.returncode}: {r.stderr[-500:]}")
        cpu = panels(open(os.path.join(a.out_dir, "node-job.html"), encoding="utf-8").read())["CPU"]
        if ">no data for node_cpu_seconds_total<" not in cpu or len(solid_lines(cpu)) != 1:
            fail("with --node-job node (nothing scraped so), the CPU panel does not say no data "
                 "for node_cpu_seconds_total beside the service's line")
        print("node job: the default name finds no machine CPU here, --node-job host does")
    finally:
        subprocess.run([observe, "stop", "--dir", stack], stdout=subprocess.DEVNULL)
        for service in services:
            service.terminate()
            service.wait(timeout=30)
    print("PASS")


if __name__ == "__main__":
    main()
