"""scripts/observe end to end: a real headroom-service under `headroom load`, scraped every second
by Debian's Prometheus and node_exporter; what Prometheus's HTTP API answers (PromQL) must agree
with what headroom load measured, within the bounds each test states. Run by CTest (label
`observe`) with the `postgres` fixture, which sets HEADROOM_PG_DIR, HEADROOM_SOURCE_DIR and
HEADROOM_BINARY_DIR."""
import json
import os
import pathlib
import re
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import pytest

SOURCE = pathlib.Path(os.environ["HEADROOM_SOURCE_DIR"])
BUILD = pathlib.Path(os.environ["HEADROOM_BINARY_DIR"])
OBSERVE = str(SOURCE / "scripts" / "observe")
POOL_SIZE = 4  # --max-open and --max-idle alike, so the pool never closes a connection
RATE, DURATION = 200, 15  # requests/s and seconds: light enough for two shared cores


class Prometheus:
    """Instant queries against Prometheus's HTTP API (/api/v1/query)."""

    def __init__(self, url):
        self.url = url

    def query(self, promql, at=None):
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}",
                                    timeout=10) as r:
            answer = json.load(r)
        assert answer["status"] == "success", f"{promql}: {answer}"
        return answer["data"]["result"]

    def scalar(self, promql, at=None):
        """The value of a query that must give exactly one series."""
        result = self.query(promql, at)
        assert len(result) == 1, f"{promql} gave {len(result)} series, not 1: {result}"
        return float(result[0]["value"][1])

    def wait_for_scrapes_after(self, moment, timeout=30):
        """Waits until both jobs were scraped after `moment` (unix seconds), so an instant query at
        a later time reads values the targets had after `moment`."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            # timestamp() of a bare selector is the scrape's own time (of an expression such as
            # `up == 1` it would be the query's time).
            latest = {s["metric"]["job"]: float(s["value"][1])
                      for s in self.query("min by (job) (timestamp(up))")}
            if len(latest) == 2 and min(latest.values()) > moment:
                return
            time.sleep(0.2)
        pytest.fail(f"Prometheus at {self.url} did not scrape both jobs within {timeout} s")


def start_service(folder):
    dsn = subprocess.run([str(SOURCE / "scripts" / "pg"), "dsn", "--dir",
                          os.environ["HEADROOM_PG_DIR"]], check=True, capture_output=True,
                         text=True).stdout.strip()
    log = open(folder / "service.log", "w")
    service = subprocess.Popen([str(BUILD / "service" / "headroom-service"), "--dsn", dsn,
                                "--host", "127.0.0.1", "--port", "0", "--max-open", str(POOL_SIZE),
                                "--max-idle", str(POOL_SIZE)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        printed = (folder / "service.log").read_text()
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", printed)
        if found:
            return service, int(found.group(1))
        assert service.poll() is None, "headroom-service exited: " + printed
        time.sleep(0.05)
    service.kill()
    pytest.fail("headroom-service printed no 'listening' line within 30 s")


@pytest.fixture(scope="module")
def run():
    """One observed run shared by the tests: the service, scripts/observe, a steady load, and the
    instants t0 (every target scraped, load not started) and t1 (every target scraped after the
    load ended). Between two scrapes of an idle service its counters do not move, so differences
    of values at t0 and t1 are exactly what the load caused."""
    with tempfile.TemporaryDirectory(prefix="headroom-observe-test-") as tmp:
        folder = pathlib.Path(tmp)
        service, port = start_service(folder)
        observe_dir = str(folder / "observe")
        try:
            started = subprocess.run([OBSERVE, "start", "--service", f"127.0.0.1:{port}", "--dir",
                                      observe_dir], capture_output=True, text=True, timeout=120)
            if started.returncode != 0:
                pytest.fail(f"scripts/observe start exited {started.returncode}: {started.stderr}")
            urls = dict(line.split(": ", 1) for line in started.stdout.splitlines())
            prometheus = Prometheus(urls["prometheus"])
            prometheus.wait_for_scrapes_after(time.time())
            t0 = time.time()
            report_path = folder / "load.json"
            subprocess.run([str(BUILD / "cli" / "headroom"), "load", "--target",
                            f"http://127.0.0.1:{port}/", "--method", "POST", "--body",
                            str(SOURCE / "tests" / "fixtures" / "age_match.json"), "--rate",
                            str(RATE), "--duration", f"{DURATION}s", "--json", str(report_path)],
                           check=True, timeout=DURATION + 60)
            load_ended = time.time()
            prometheus.wait_for_scrapes_after(load_ended)
            yield {"prometheus": prometheus, "urls": urls, "stdout": started.stdout,
                   "dir": observe_dir, "load": json.loads(report_path.read_text()), "t0": t0,
                   "t1": time.time(), "port": port}
        finally:
            subprocess.run([OBSERVE, "stop", "--dir", observe_dir], timeout=60)
            service.terminate()
            service.wait(timeout=30)


def running(pid):
    """Whether the process runs (an exited one its parent has not reaped yet does not)."""
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def window_delta(run, selector):
    """How much a counter (one series) grew between t0 and t1."""
    p = run["prometheus"]
    return p.scalar(selector, run["t1"]) - p.scalar(selector, run["t0"])


def bucket_edges(run, phase):
    """The upper bounds (le) of headroom_phase_seconds's buckets, finite ones, ascending."""
    series = run["prometheus"].query(f'headroom_phase_seconds_bucket{{phase="{phase}"}}', run["t1"])
    return sorted(float(s["metric"]["le"]) for s in series if s["metric"]["le"] != "+Inf")


def bucket_around(value, edges):
    """(lower, upper) bounds of the Prometheus bucket holding `value`."""
    lower = 0.0
    for upper in edges:
        if value <= upper:
            return lower, upper
        lower = upper
    return lower, float("inf")


def window_quantile(run, q, phase):
    """histogram_quantile over exactly the requests between t0 and t1 (bucket counts at t1 minus
    those at t0), as a dashboard's rate(...[window]) would show without its extrapolation."""
    bucket = f'headroom_phase_seconds_bucket{{phase="{phase}"}}'
    return run["prometheus"].scalar(
        f"histogram_quantile({q}, {bucket} @ {run['t1']:.3f} - {bucket} @ {run['t0']:.3f})",
        run["t1"])


def test_start_prints_both_loopback_urls_and_writes_the_prometheus_url(run):
    assert set(run["urls"]) == {"prometheus", "node_exporter"}, run["stdout"]
    for url in run["urls"].values():
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), url
    written = pathlib.Path(run["dir"], "prometheus.url").read_text()
    assert written.strip() == run["urls"]["prometheus"]
    up = {s["metric"]["job"]: s["value"][1] for s in run["prometheus"].query("up", run["t1"])}
    assert up == {"headroom-service": "1", "node": "1"}


def test_a_second_start_says_it_runs_and_prints_the_same_urls(run):
    again = subprocess.run([OBSERVE, "start", "--dir", run["dir"]], capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0, again.stderr
    assert again.stdout == run["stdout"]
    assert "already running" in again.stderr


def test_prometheus_counted_exactly_the_requests_headroom_load_completed(run):
    # Exact (bound 0): t0 and t1 read scrapes taken while the service was idle, so no request
    # can fall across a scrape boundary.
    load = run["load"]
    assert load["requests"]["completed"] == RATE * DURATION
    assert load["status_counts"] == {"200": RATE * DURATION}
    counted = window_delta(run, 'headroom_phase_seconds_count{phase="total"}')
    assert counted == load["requests"]["completed"]
    # This series appears with the first answer, so at t0 it is absent: zero.
    answered = window_delta(run,
                            'sum(http_request_seconds_count{path="/",code="200"}) or vector(0)')
    assert answered == load["requests"]["completed"]


@pytest.mark.parametrize("phase", ["queue", "wait", "dial", "query", "release"])
def test_phase_seconds_summed_by_prometheus_match_the_server_timing_headers(run, phase):
    # The same requests' same durations: the header rounds each to 1 us (%.3f ms), so the sums
    # differ by at most 0.5 us per request.
    load = run["load"]
    from_headers = load["phases"][phase]["sum_s"]
    from_prometheus = window_delta(run, f'headroom_phase_seconds_sum{{phase="{phase}"}}')
    bound = 0.5e-6 * load["requests"]["completed"]
    assert abs(from_prometheus - from_headers) <= bound, (phase, from_prometheus, from_headers)


@pytest.mark.parametrize("phase,q", [("query", 0.5), ("query", 0.99), ("queue", 0.99)])
def test_phase_quantiles_from_prometheus_buckets_fall_in_the_bucket_of_the_server_timing_ones(
        run, phase, q):
    # Same requests, same clock: histogram_quantile interpolates inside the bucket holding the
    # q-th sample, so it lies in the bucket of headroom load's exact quantile; 1 % on each edge
    # for the headers' 1 us rounding, the HDR histogram's 3 significant digits and a rank
    # convention one sample apart at a bucket edge.
    from_headers = run["load"]["phases"][phase][f"p{round(q * 100)}_s"]
    from_prometheus = window_quantile(run, q, phase)
    lower, upper = bucket_around(from_headers, bucket_edges(run, phase))
    assert lower * 0.99 <= from_prometheus <= upper * 1.01, (phase, q, from_prometheus,
                                                             from_headers)


@pytest.mark.parametrize("q", [0.5, 0.99])
def test_server_side_total_quantile_is_below_the_client_one_by_at_most_the_clients_own_part(run, q):
    load = run["load"]
    client = load["latency"][f"p{round(q * 100)}_s"]
    server = window_quantile(run, q, "total")
    edges = bucket_edges(run, "total")
    # Each request's server time (parsed to answered) lies inside its client time (intended
    # send to response read), so the server quantile is at most the client's, up to the width of
    # the bucket histogram_quantile interpolates in.
    lower, upper = bucket_around(server, edges)
    assert server <= client * (upper / lower if lower > 0 else 1) * 1.01, (server, client)
    # The client's own part C (send delay, loopback, HTTP parse and write) is known only by its
    # mean, the difference of the two means over the same requests; Markov's inequality puts
    # P(C > m / d) <= d, and P(server > s_(q + d)) <= d, so the client quantile is at most
    # s_(q + d) + m / d with d = (1 - q) / 2. Loose at p99 (m / 0.005), tight at p50.
    count = window_delta(run, 'headroom_phase_seconds_count{phase="total"}')
    server_mean = window_delta(run, 'headroom_phase_seconds_sum{phase="total"}') / count
    client_part = load["latency"]["mean_s"] - server_mean
    assert client_part >= 0, (load["latency"]["mean_s"], server_mean)
    d = (1 - q) / 2
    _, server_upper = bucket_around(window_quantile(run, q + d, "total"), edges)
    assert client <= server_upper * 1.01 + client_part / d, (client, server_upper, client_part)
    print(f"p{round(q * 100)}: server {server * 1e3:.3f} ms, client {client * 1e3:.3f} ms, "
          f"client's own part mean {client_part * 1e3:.3f} ms")


def test_pool_counters_show_a_pool_of_four_that_never_closed_a_connection(run):
    p, t1 = run["prometheus"], run["t1"]
    assert p.scalar("headroom_pool_max_open", t1) == POOL_SIZE
    assert p.scalar("headroom_pool_max_idle", t1) == POOL_SIZE
    dials = window_delta(run, "headroom_pool_dials_total")
    # At least one connection served 3000 queries; no more than the limit were ever opened,
    # because with max_idle = max_open a released connection always finds room in the idle list.
    assert 1 <= dials <= POOL_SIZE
    assert window_delta(run, "headroom_pool_dial_failures_total") == 0
    for closed in ("max_idle", "max_idle_time", "max_lifetime", "other"):
        assert window_delta(run, f"headroom_pool_closed_{closed}_total") == 0, closed
    assert window_delta(run, "headroom_pool_wait_timeouts_total") == 0
    # After the load every connection dialed is open and idle again.
    assert p.scalar("headroom_pool_open", t1) == p.scalar("headroom_pool_dials_total", t1)
    assert p.scalar("headroom_pool_idle", t1) == p.scalar("headroom_pool_open", t1)
    assert p.scalar("headroom_pool_in_use", t1) == 0
    # In use while loaded, as the 1 s scrapes saw it: never above the limit.
    window = f"{round(run['t1'] - run['t0'])}s"
    assert p.scalar(f"max_over_time(headroom_pool_in_use[{window}])", t1) <= POOL_SIZE


def test_node_cpu_busy_seconds_cover_the_service_and_generator_and_fit_in_the_cores(run):
    p, t0, t1 = run["prometheus"], run["t0"], run["t1"]
    busy = 'sum(node_cpu_seconds_total{mode!~"idle|iowait"})'
    node_busy = p.scalar(busy, t1) - p.scalar(busy, t0)
    stamp = 'min(timestamp(node_cpu_seconds_total{mode="idle"}))'
    window = p.scalar(stamp, t1) - p.scalar(stamp, t0)
    cores = p.scalar('count(node_cpu_seconds_total{mode="idle"})', t1)
    # A sample is stamped when its scrape starts and node_exporter reads /proc/stat during the
    # scrape, so the two reads are at most the last scrape's duration further apart than the
    # stamps; /proc/stat counts in 10 ms ticks per CPU: one tick per CPU at each end.
    late = p.scalar('scrape_duration_seconds{job="node"}', t1)
    ticks = 2 * cores * 0.01
    assert 0 < node_busy <= cores * (window + late) + ticks, (node_busy, cores, window, late)
    # The machine was at least as busy as the two processes under test (the service's CPU from
    # its own counter, the generator's from its report), both inside the window.
    service_cpu = window_delta(run, "process_cpu_seconds_total")
    generator = run["load"]["generator_cpu"]
    generator_cpu = generator["user_s"] + generator["system_s"]
    assert node_busy >= service_cpu + generator_cpu - ticks, (node_busy, service_cpu, generator)
    print(f"node busy {node_busy:.2f} s of {cores:.0f} x {window:.1f} s; "
          f"service {service_cpu:.2f} s, generator {generator_cpu:.2f} s")


def test_stop_ends_both_daemons_and_a_second_stop_is_harmless(run):
    pids = [int(pathlib.Path(run["dir"], f"{name}.pid").read_text())
            for name in ("prometheus", "node_exporter")]
    subprocess.run([OBSERVE, "stop", "--dir", run["dir"]], check=True, timeout=60)
    for pid in pids:
        assert not running(pid), f"pid {pid} still runs"
    status = subprocess.run([OBSERVE, "status", "--dir", run["dir"]], capture_output=True,
                            text=True)
    assert status.returncode == 1 and "prometheus: stopped" in status.stdout
    assert subprocess.run([OBSERVE, "stop", "--dir", run["dir"]], timeout=60).returncode == 0


def test_a_node_job_name_prometheus_cannot_take_is_refused_before_anything_starts(tmp_path):
    r = subprocess.run([OBSERVE, "start", "--node-job", "a b", "--dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr == ("scripts/observe: --node-job must be a job name (letters, digits, _ . -), "
                        "not 'a b'\n")
    assert not (tmp_path / "prometheus.pid").exists()
