"""Headroom from Python: load a calibration or scenario, change it, simulate, predict.

    import headroom
    cal = headroom.load("calibration.json")            # or headroom.Scenario({...})
    r = headroom.predict(cal, rate=400, max_open=8, max_idle=8, slo="p99=60ms", run_length="20s")
    r.p99            # Estimate(value, low, high), seconds; None when the load cannot be served
    r.live           # one live run's 90 % prediction interval and P(SLO met)
    r.to_dict()      # what `headroom predict --json` writes

Everything is computed by the C++ libraries (the `_headroom` extension); this package only
re-exports them. Units: seconds, requests per second, fractions.
"""

from ._headroom import Estimate, Prediction, Scenario, ScenarioError, predict, simulate


def load(path):
    """Reads a scenario or calibration file (ScenarioError names what is wrong)."""
    return Scenario.load(str(path))


__all__ = ["Estimate", "Prediction", "Scenario", "ScenarioError", "load", "predict", "simulate"]
