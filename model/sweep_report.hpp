// Writing a sweep: CSV (one row per grid point) and JSON (each point's `headroom predict --json`
// object beside its grid coordinates). Kept out of headroom_model so the simulation needs no JSON.
#pragma once

#include <boost/json/value.hpp>
#include <ostream>
#include <vector>

#include "scenario.hpp"
#include "sweep.hpp"

namespace headroom {

// Header, then one row per point. Seconds, req/s and fractions, as in predict --json; a figure
// that is not known (latency of an unstable point, no SLO) is an empty cell. Utilisation columns
// are the resources the results name ("utilization_cpu", "utilization_workers", ...).
void write_sweep_csv(std::ostream& out, const std::vector<sweep_result>& r);

// {"format": "headroom-sweep/1", "scenario": name, "points": [{"rate", "max_open", "max_idle",
// "cores", "prediction": predict --json}]}
boost::json::value sweep_to_json(const scenario& base, const std::vector<sweep_result>& r);

}  // namespace headroom
