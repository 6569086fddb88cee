"""Headroom from Python: load a calibration or scenario, change it, simulate, predict, sweep, plan.

    import headroom
    cal = headroom.load("calibration.json")            # or headroom.Scenario({...})
    r = headroom.predict(cal, rate=400, max_open=8, max_idle=8, slo="p99=60ms", run_length="20s")
    r.p99            # Estimate(value, low, high), seconds; None when the load cannot be served
    r.live           # one live run's 90 % prediction interval and P(SLO met)
    r.to_dict()      # what `headroom predict --json` writes
    rows = headroom.sweep(cal, rates=[100, 200, 400], max_idle=[2, 8], slo="p99=60ms", run_length="20s")
    p = headroom.plan(cal, 10000, "p99=60ms", redundancy=1)   # p.instances, p.to_dict()

Everything is computed by the C++ libraries (the `_headroom` extension); this package only
re-exports them, and hands a sweep's points to an executor when given one. Units: seconds,
requests per second, fractions.
"""

from . import _headroom
from ._headroom import Estimate, Plan, Prediction, Scenario, ScenarioError, plan, predict, simulate


def load(path):
    """Reads a scenario or calibration file (ScenarioError names what is wrong)."""
    return Scenario.load(str(path))


def _sweep_point(fields, point):
    # A module-level function, so that executors on other processes (Dask) pickle it by name.
    return _headroom.sweep_point(fields, point)


def sweep(scenario, rates, max_open=None, max_idle=None, cores=None, *, executor=None, threads=0,
          progress=None, **overrides):
    """`headroom sweep`: every point of rates x max_open x max_idle x cores predicted.

    Returns one dict per point, in grid order (rates fastest, then max_idle, max_open, cores),
    exactly the CLI's `--json` "points": {"rate", "max_open", "max_idle", "cores", "prediction":
    what `headroom predict --json` writes}. A list argument left None is the scenario's own value.
    `overrides` are `predict`'s (slo, run_length, precision, seed, ...), applied first.

    executor: None runs on this machine's cores (`threads`, 0 = all). Otherwise any object with
    `submit` (a concurrent.futures executor, or a Dask distributed.Client): each point is one
    task, computed exactly as the local sweep computes it (one thread per point), so the results
    are the same for the same seed. Workers must be able to `import headroom` (PYTHONPATH).
    progress: called as progress(done, total, elapsed_s, eta_s) after each point.
    """
    base = scenario.with_overrides(**overrides) if overrides else scenario
    if executor is None:
        return _headroom.sweep(base, rates, max_open, max_idle, cores, threads, progress)
    points = _headroom.sweep_points(base, rates, max_open, max_idle, cores)
    fields = base.to_dict()
    futures = [executor.submit(_sweep_point, fields, p) for p in points]
    rows = []
    for f in futures:
        rows.append(f.result())
        if progress is not None:
            progress(len(rows), len(points), 0.0, 0.0)
    return rows


__all__ = ["Estimate", "Plan", "Prediction", "Scenario", "ScenarioError", "load", "plan", "predict",
           "simulate", "sweep"]
