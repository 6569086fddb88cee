// Writing a prediction: JSON (SCENARIO.md "The prediction") and the readable table. Kept out of
// headroom_model so the simulation library needs no JSON.
#pragma once

#include <boost/json/value.hpp>
#include <string>

#include "prediction.hpp"
#include "scenario.hpp"

namespace headroom {

// An unstable or refused prediction writes its latency sets and phases as null (and, refused,
// every simulated figure): a planner must never read p99 = 0 as "perfect".
boost::json::value prediction_to_json(const scenario& s, const prediction& p);
// Unstable or refused: the reason instead of the latency figures.
std::string prediction_table(const scenario& s, const prediction& p);

}  // namespace headroom
