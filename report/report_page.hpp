// The report as one self-contained HTML page: inline CSS and inline SVG charts drawn by
// svg_chart, no script, font, image or link fetched from anywhere.
#pragma once

#include <string>

#include "report_data.hpp"

namespace headroom::report {

// Charts the page holds: latency against rate, phases per step, pool per step, the
// validation's cases when given, and the live window's panels when read.
int report_chart_count(const report_inputs& in);

std::string report_html(const report_inputs& in);

}  // namespace headroom::report
