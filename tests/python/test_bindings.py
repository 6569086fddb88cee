# The Python module against the CLI: same seed, same answer; typed views; errors carry the
# CLI's message.
import json
import subprocess

import pytest

import headroom


def cli_json(cli, *args):
    out = subprocess.run([cli, "predict", *args, "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def without_wall_time(d):
    # the only figure that differs between two runs of the same seed is how long it took
    d = json.loads(json.dumps(d))
    d["run"].pop("wall_seconds", None)
    return d


def test_predict_equals_the_cli_for_the_same_seed(cli, scenarios):
    path = scenarios / "study_default_pool.json"
    args = dict(rate=150, seed=7, slo="p99=60ms", run_length="5s", threads=2)
    from_python = headroom.predict(headroom.load(path), **args).to_dict()
    from_cli = cli_json(cli, "--scenario", str(path), "--rate", "150", "--seed", "7", "--slo", "p99=60ms",
                        "--run-length", "5s", "--threads", "2")
    assert without_wall_time(from_python) == without_wall_time(from_cli)


def test_a_scenario_survives_a_round_trip_through_a_dict(scenarios):
    s = headroom.load(scenarios / "study_tuned_pool.json")
    d = s.to_dict()
    assert headroom.Scenario(d).to_dict() == d
    d["pool"]["max_idle"] = 5
    assert headroom.Scenario(d).to_dict()["pool"]["max_idle"] == 5


def test_typed_views_agree_with_the_dict(scenarios):
    r = headroom.predict(headroom.load(scenarios / "mm1.json"), requests=4000, seed=3)
    d = r.to_dict()
    assert r.stable
    assert r.p99.value == pytest.approx(d["latency"]["p99"]["value"])  # the same figure, two views
    assert r.p99.low <= r.p99.value <= r.p99.high
    # M/M/1 at rho 0.8, mean service 1 s: utilisation 0.8 (the estimate is within +-10 % here)
    assert r.utilization["workers"] == pytest.approx(0.8, rel=0.1)
    assert r.latency("mean").value == pytest.approx(d["latency"]["mean"]["value"])


def test_unstable_predictions_have_no_percentiles(scenarios):
    r = headroom.predict(headroom.load(scenarios / "mm1.json"), rate=5)
    assert not r.stable
    assert "overloaded" in r.reason
    assert r.p99 is None and r.latency("p50") is None
    assert r.to_dict()["latency"] is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(go_version="2.0"), "--go-version: "),
        (dict(max_open="x"), "--max-open: expected an integer"),
        (dict(run_length="5 parsecs"), "--run-length: "),
        (dict(slo="p99<60"), "--slo: "),
        (dict(colour="blue"), "colour: not an override"),
    ],
)
def test_bad_overrides_raise_with_the_clis_message(scenarios, kwargs, message):
    s = headroom.load(scenarios / "mm1.json")
    with pytest.raises(headroom.ScenarioError) as e:
        headroom.predict(s, **kwargs)
    assert str(e.value).startswith(message)
    assert isinstance(e.value, ValueError)


def test_bad_files_and_dicts_raise_naming_the_problem(tmp_path):
    with pytest.raises(headroom.ScenarioError, match="nope.json"):
        headroom.load(tmp_path / "nope.json")
    (tmp_path / "half.json").write_text('{"name": "x", "arrivals": {')
    with pytest.raises(headroom.ScenarioError, match="half.json"):
        headroom.load(tmp_path / "half.json")
    with pytest.raises(headroom.ScenarioError, match="phases"):
        headroom.Scenario({"phases": {"query": {"delay": {"type": "banana"}}}})


def test_the_latency_histogram_is_numpy_arrays_in_seconds_that_give_back_the_p99(scenarios):
    import numpy as np

    r = headroom.predict(headroom.load(scenarios / "mm1.json"), requests=4000, seed=3)
    h = r.histogram()
    assert h["lower"].dtype == np.float64 and h["count"].dtype == np.uint64
    assert h["lower"].shape == h["upper"].shape == h["count"].shape and h["lower"].ndim == 1
    assert np.all(h["upper"] > h["lower"]) and np.all(np.diff(h["lower"]) > 0)
    # every successful request is in it once
    assert int(h["count"].sum()) + h["zeros"] == r.to_dict()["latency"]["count"]
    # buckets at most 0.4 % wide (relative), so the 99th percentile read from the arrays lands
    # in the bucket of the reported p99: within 0.4 % of it
    cum = np.cumsum(h["count"]) / h["count"].sum()
    k = int(np.searchsorted(cum, 0.99))
    assert h["lower"][k] <= r.p99.value * 1.004 and h["upper"][k] >= r.p99.value / 1.004
    # seconds: M/M/1 with a mean service of 1 s has a p99 of ln(100) / (1 - 0.8) = 23 s
    assert 15 < r.p99.value < 30


def strip_wall_time(rows):
    # the one figure that differs between two computations of the same point is how long it took
    rows = json.loads(json.dumps(rows))
    for r in rows:
        r["prediction"]["run"].pop("wall_seconds", None)
    return rows


SWEEP = dict(rates=[200, 400], max_idle=[2, 8], requests=5000, precision=0.1, run_length="2s", slo="p99=60ms")


def test_sweep_equals_the_clis_json_points(cli, scenarios):
    path = scenarios / "study_tuned_pool.json"
    rows = headroom.sweep(headroom.load(path), **SWEEP)
    out = subprocess.run([cli, "sweep", "--scenario", str(path), "--rates", "200,400", "--max-idle", "2,8",
                          "--requests", "5000", "--precision", "0.1", "--run-length", "2s", "--slo", "p99=60ms",
                          "--json"], check=True, capture_output=True, text=True).stdout
    assert strip_wall_time(rows) == strip_wall_time(json.loads(out)["points"])
    # grid order: rates fastest, then max_idle
    assert [(r["rate"], r["max_idle"]) for r in rows] == [(200, 2), (400, 2), (200, 8), (400, 8)]


def test_a_sweep_through_an_executor_equals_the_local_sweep(scenarios):
    import concurrent.futures

    s = headroom.load(scenarios / "study_tuned_pool.json")
    local = headroom.sweep(s, **SWEEP)
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        farmed = headroom.sweep(s, executor=ex, **SWEEP)
    assert strip_wall_time(farmed) == strip_wall_time(local)


def test_a_sweep_on_a_dask_local_cluster_equals_the_local_sweep(scenarios):
    distributed = pytest.importorskip("distributed", reason="Debian's python3-distributed (scripts/setup)")
    s = headroom.load(scenarios / "study_tuned_pool.json")
    local = headroom.sweep(s, **SWEEP)
    # worker processes, as on a real cluster: the scenario and points travel pickled
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as cluster, distributed.Client(cluster) as client:
        farmed = headroom.sweep(s, executor=client, **SWEEP)
    assert strip_wall_time(farmed) == strip_wall_time(local)


def test_plan_equals_the_clis_json(cli, scenarios):
    path = scenarios / "study_tuned_pool.json"
    args = ["--target-rps", "10000", "--slo", "p99=60ms", "--redundancy", "1", "--window", "5s",
            "--precision", "0.1", "--seed", "5", "--quiet"]
    p = headroom.plan(headroom.load(path), 10000, "p99=60ms", redundancy=1, window="5s", plan_precision=0.1, seed=5)
    out = subprocess.run([cli, "plan", "--scenario", str(path), *args, "--json"], capture_output=True, text=True)
    from_cli = json.loads(out.stdout)
    mine = p.to_dict()
    for d in (mine, from_cli):
        d.pop("wall_seconds", None)
    assert mine == from_cli
    assert p.feasible and p.instances == from_cli["instances"] >= 2
    assert p.summary and any(line.startswith("instances = ceil(") for line in p.summary)


def test_plan_errors_carry_the_clis_message(scenarios):
    s = headroom.load(scenarios / "study_tuned_pool.json")
    with pytest.raises(headroom.ScenarioError, match="^--slo: "):
        headroom.plan(s, 10000, "p99<60ms")
    with pytest.raises(headroom.ScenarioError, match="^--zones: expected an integer"):
        headroom.plan(s, 10000, zones="two")
