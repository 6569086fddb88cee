// Writing a plan: the JSON that `headroom plan --json` prints and `headroom report --plan` reads
// ("headroom-plan/1", README "Planning"), and a Markdown table for a ticket. Kept out of
// headroom_model so the simulation library needs no JSON.
#pragma once

#include <boost/json/value.hpp>
#include <string>

#include "plan.hpp"

namespace headroom {

// Times in seconds, rates in req/s, utilisations as fractions; a figure not known is null
// (never 0), e.g. every capacity figure of an infeasible plan.
boost::json::value plan_to_json(const plan& p);

// The summary lines as text, one per line.
std::string plan_text(const plan& p);

// A Markdown table of the figures, then the arithmetic lines.
std::string plan_markdown(const plan& p);

}  // namespace headroom
