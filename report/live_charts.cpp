// The live window's charts and table (live_charts.hpp). Time runs along x in UTC clock time;
// a live series is a solid line, the model's figure for it a dashed level in the same colour.
#include "live_charts.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "duration.hpp"
#include "report_data.hpp"
#include "svg_chart.hpp"

namespace headroom::report {

namespace {

// Okabe and Ito's palette, as the rest of the report; the phases keep report_page's colours.
constexpr const char* series_colours[] = {"#0072B2", "#D55E00", "#009E73", "#E69F00",
                                          "#CC79A7", "#56B4E9", "#555555"};
constexpr const char* grey = "#555555";

std::string colour_of(const live_panel& p, const std::string& series) {
  const char* phase_colours[] = {"#E69F00", "#CC79A7", "#D55E00", "#0072B2", "#009E73"};
  for (int i = 0; i < step_phase_count; ++i)
    if (series == step_phases[i]) return phase_colours[i];
  for (std::size_t i = 0; i < p.series.size(); ++i)
    if (p.series[i].name == series) return series_colours[i % std::size(series_colours)];
  return grey;
}

std::string utc(double unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(std::floor(unix_seconds));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string figure(double value, double scale, const char* unit) {
  if (!std::isfinite(value)) return "-";
  char buf[48];
  const double v = value * scale;
  std::snprintf(buf, sizeof buf, std::abs(v) < 10 ? "%.2f%s" : "%.1f%s", v, unit);
  return buf;
}

// The y axis: every finite value drawn (and the SLO on a latency panel), with room above. A log
// axis stops at 10 s, as the report's other latency charts: a tail of minutes would flatten
// everything else; a linear one starts at zero, as a dashboard's does.
axis y_axis(const live_panel& p, const latency_slo& slo) {
  double lo = INFINITY, hi = 0;
  auto see = [&](double v) {
    if (!std::isfinite(v) || (p.y_log && v <= 0)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  };
  for (const live_series& s : p.series)
    for (double v : s.v) see(v);
  for (const model_level& m : p.model) see(m.value);
  if (p.slo && !p.series.empty()) see(slo.latency);
  if (p.y_log) {
    if (!(hi > 0)) return {p.y_label, 1e-4, 1, true, {}, p.y_scale};
    return {p.y_label, lo / 1.5, std::min(hi * 1.5, 10.0), true, {}, p.y_scale};
  }
  return {p.y_label, 0, hi > 0 ? hi * 1.1 : 1, false, {}, p.y_scale};
}

std::string comparison_table(const live_window& w) {
  std::ostringstream os;
  os << "<table><tr><th>panel</th><th>figure</th><th>live (median while requests arrived)</th>"
        "<th>model</th></tr>\n";
  for (const live_panel& p : w.panels) {
    const bool ms = p.y_scale == 1000;
    for (const live_series& s : p.series) {
      std::string model = "-";
      for (const model_level& m : p.model)
        if (m.series == s.name) model = figure(m.value, p.y_scale, ms ? " ms" : "");
      os << "<tr><td>" << xml_escape(p.title) << "</td><td>" << xml_escape(s.name) << "</td><td>"
         << figure(busy_median(s, w.busy_times), p.y_scale, ms ? " ms" : "") << "</td><td>" << model
         << "</td></tr>\n";
    }
    for (const std::string& m : p.missing)
      os << "<tr><td>" << xml_escape(p.title) << "</td><td>" << xml_escape(m)
         << "</td><td>no data</td><td>-</td></tr>\n";
  }
  os << "</table>\n";
  return os.str();
}

}  // namespace

std::string live_panel_svg(const live_window& w, const live_panel& p, const latency_slo& slo) {
  svg_chart chart({"time (UTC)", w.from, w.to, false, {}, 1, true}, y_axis(p, slo), 470, 300);
  for (const live_series& s : p.series) chart.line(s.t, s.v, colour_of(p, s.name), s.name);
  for (const model_level& m : p.model)
    if (std::isfinite(m.value))
      chart.line({w.from, w.to}, {m.value, m.value}, colour_of(p, m.series), "", true);
  // One legend entry for every dashed level: the colours already say which line it belongs to.
  if (!p.model.empty()) chart.line({}, {}, grey, "dashed: the model", true);
  // Without a live line the SLO would only cover the "no data" note.
  if (p.slo && !p.series.empty()) chart.hline(slo.latency, grey, "SLO: " + slo.text());
  for (const std::string& m : p.missing) chart.note("no data for " + m);
  return chart.svg(p.title + " over the live window");
}

std::string live_section(const live_window& w, const latency_slo& slo) {
  std::ostringstream os;
  os << "<h2>The live window beside the model</h2>\n<p>From Prometheus <code>"
     << xml_escape(w.prometheus) << "</code>, job <code>" << xml_escape(w.job)
     << "</code> (machine: job <code>" << xml_escape(w.node_job) << "</code>), "
     << utc(w.from) << " to " << utc(w.to) << ", a point every " << format_duration(w.step)
     << ", rates over " << format_duration(w.rate_window) << ": the study's dashboard. ";
  if (w.model) {
    const prediction& p = w.model->p;
    char rate[64];
    std::snprintf(rate, sizeof rate, "%.1f req/s", w.busy_rate);
    os << "Dashed: the model at the window's rate while requests arrived (" << rate;
    if (w.instances > 1) os << " over " << w.instances << " instances, each its share";
    os << ") and pool setting max_open " << w.max_open << ", max_idle " << w.max_idle
       << (w.go_version.empty() ? "" : ", Go " + xml_escape(w.go_version))
       << (w.setting_from_service ? " (the service's gauges)"
                                  : " (the calibration's: the service's gauges had no data)");
    if (!(p.stable && p.replications > 0))
      os << "; the model finds that load <b>unstable</b> (" << xml_escape(p.reason)
         << "), so it draws no level";
    os << ".</p>\n";
  } else if (!(w.busy_rate > 0)) {
    os << "No request arrived in the window, so there is no rate to run the model at.</p>\n";
  } else {
    os << "</p>\n";
  }
  os << comparison_table(w) << "<div class=\"panels\">\n";
  for (const live_panel& p : w.panels)
    os << "<div><h3>" << xml_escape(p.title) << "</h3>\n"
       << live_panel_svg(w, p, slo) << "</div>\n";
  os << "</div>\n";
  return os.str();
}

}  // namespace headroom::report
