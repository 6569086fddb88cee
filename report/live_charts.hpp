// The live window drawn for the report (live_window.hpp's data): one time-series chart per
// dashboard panel with the model's figures as dashed levels, and a table of both side by side.
#pragma once

#include <string>

#include "live_window.hpp"
#include "slo.hpp"

namespace headroom::report {

// One panel as an inline SVG chart, "no data for <metric>" written on it for what was missing.
std::string live_panel_svg(const live_window& w, const live_panel& p, const latency_slo& slo);

// The report's section: where the window came from, the table, and every panel.
std::string live_section(const live_window& w, const latency_slo& slo);

}  // namespace headroom::report
