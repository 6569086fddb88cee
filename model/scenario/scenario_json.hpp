// Scenario files (JSON, schema in model/SCENARIO.md) to scenario structs and back. Its own
// library (headroom_scenario_json), so the simulation needs no JSON; predictions are written by
// prediction_report.hpp.
#pragma once

#include <boost/json/value.hpp>
#include <string>

#include "scenario.hpp"

namespace headroom {

// Throws scenario_error naming the field ("phases.query.delay.type: unknown distribution 'x'").
scenario scenario_from_json(const boost::json::value& v);
scenario load_scenario_file(const std::string& path);  // also for calibration files
distribution distribution_from_json(const boost::json::value& v, const std::string& field);

boost::json::value distribution_to_json(const distribution& d);
boost::json::value scenario_to_json(const scenario& s);

}  // namespace headroom
