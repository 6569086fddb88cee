// The report page (report_page.hpp): each chart one function, the page a list of sections.
// Seconds are drawn as milliseconds (people read them); rates are req/s.
#include "report_page.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "duration.hpp"
#include "live_charts.hpp"
#include "svg_chart.hpp"

namespace headroom::report {

namespace json = boost::json;

namespace {

// Colours that stay apart for most colour-blind readers (Okabe and Ito's palette).
constexpr const char* blue = "#0072B2";
constexpr const char* red = "#D55E00";
constexpr const char* green = "#009E73";
constexpr const char* grey = "#555555";
constexpr const char* phase_colours[step_phase_count] = {"#E69F00", "#CC79A7", "#D55E00", "#0072B2",
                                                         "#009E73"};

std::string ms(double seconds) {
  if (!std::isfinite(seconds)) return "fell over";
  char buf[32];
  std::snprintf(buf, sizeof buf, seconds < 0.01 ? "%.2f ms" : "%.1f ms", seconds * 1000);
  return buf;
}

std::string fixed(double x, int digits) {
  if (!std::isfinite(x)) return "-";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

std::string esc(const std::string& s) { return xml_escape(s); }

// A JSON field as text for a table cell: numbers with `digits` decimals, null as "-".
std::string cell(const json::value* v, int digits = 0) {
  if (!v || v->is_null()) return "-";
  if (v->is_string()) return esc(std::string(v->get_string()));
  if (v->is_bool()) return v->get_bool() ? "yes" : "no";
  if (v->is_number()) return fixed(v->to_number<double>(), digits);
  return esc(json::serialize(*v));
}

const json::value* field(const json::object& o, std::initializer_list<const char*> path) {
  const json::object* at = &o;
  const json::value* v = nullptr;
  for (const char* k : path) {
    if (!at) return nullptr;
    v = at->if_contains(k);
    if (!v) return nullptr;
    at = v->if_object();
  }
  return v;
}

double number(const json::value* v, double fallback = NAN) {
  return v && v->is_number() ? v->to_number<double>() : fallback;
}

std::string step_name(const measured_step& s) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g req/s #%d", s.rate, s.repeat + 1);
  return buf;
}

// The latency axis: every finite figure drawn, and the SLO, with room around them.
axis latency_axis(const std::vector<double>& values, double slo) {
  double lo = slo, hi = slo;
  for (double v : values)
    if (std::isfinite(v) && v > 0) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  axis a{"latency (ms, log scale)", lo / 1.5, hi * 1.5, true, {}, 1000};
  return a;
}

std::string latency_chart(const report_inputs& in) {
  std::vector<double> all;
  for (const measured_step& s : in.steps) all.insert(all.end(), {s.p50, s.p99});
  double rmax = 0;
  for (const predicted_curve& c : in.curves)
    for (const sweep_result& r : c.points) {
      rmax = std::max(rmax, r.point.rate);
      if (r.p.stable)
        all.insert(all.end(), {r.p.all_requests.p50.value, r.p.all_requests.p99.value});
      if (r.p.live.computed) all.insert(all.end(), {r.p.live.low, r.p.live.high});
    }
  // A tail in the tens of seconds would squash everything else: the chart stops at 10 s and a
  // run that fell over is drawn on its top edge.
  axis y = latency_axis(all, in.slo.latency);
  y.max = std::min(y.max, 10.0);
  svg_chart chart({"offered rate (req/s)", 0, rmax * 1.02, false, {}, 1}, y);
  const std::string q = in.slo.name();
  const predicted_curve& main = in.curves.front();
  std::vector<double> x, p50, p99, low, high;
  for (const sweep_result& r : main.points) {
    x.push_back(r.point.rate);
    const bool known = r.p.stable && r.p.replications > 0;
    p50.push_back(known ? r.p.all_requests.p50.value : NAN);
    p99.push_back(known ? r.p.all_requests.p99.value : NAN);
    low.push_back(r.p.live.computed ? r.p.live.low : NAN);
    high.push_back(r.p.live.computed ? r.p.live.high : NAN);
  }
  chart.band(x, low, high, red, "one live run's " + q + ": 90 % interval");
  chart.line(x, p50, blue, "predicted p50");
  chart.line(x, p99, red, "predicted p99");
  for (std::size_t i = 1; i < in.curves.size(); ++i) {
    std::vector<double> rx, r99;
    for (const sweep_result& r : in.curves[i].points) {
      rx.push_back(r.point.rate);
      r99.push_back(r.p.stable && r.p.replications > 0 ? r.p.all_requests.p99.value : NAN);
    }
    chart.line(rx, r99, green, "predicted p99 at the plan's setting", true);
  }
  std::vector<double> mx, m50, m99, ox, o99;
  for (const measured_step& s : in.steps) {
    if (s.at_model_setting) {
      mx.push_back(s.rate);
      m50.push_back(s.p50);
      m99.push_back(s.p99);
    } else {
      ox.push_back(s.rate);
      o99.push_back(s.p99);
    }
  }
  chart.points(mx, m50, blue, "measured p50 (each run)");
  chart.points(mx, m99, red, "measured p99 (each run)");
  if (!ox.empty()) chart.points(ox, o99, grey, "measured p99, other pool settings", true);
  chart.hline(in.slo.latency, grey, "SLO: " + in.slo.text());
  if (main.knee > 0) {
    char text[96];
    std::snprintf(text, sizeof text, "knee %g req/s", main.knee);
    chart.vline(main.knee, "#000000", text);
  }
  return chart.svg("latency against offered rate, measured and predicted");
}

std::vector<std::string> step_names(const report_inputs& in) {
  std::vector<std::string> names;
  for (const measured_step& s : in.steps) names.push_back(step_name(s));
  return names;
}

std::string phase_chart(const report_inputs& in) {
  double top = 0;
  for (const measured_step& s : in.steps) {
    double sum = 0;
    for (double v : s.phase_mean) sum += v;
    top = std::max(top, sum);
  }
  svg_chart chart({"step (offered rate, repeat)", 0, 1, false, step_names(in), 1},
                  {"mean time per request (ms)", 0, top > 0 ? top * 1.1 : 0.001, false, {}, 1000});
  for (int ph = 0; ph < step_phase_count; ++ph)
    chart.legend_box(step_phases[ph], phase_colours[ph]);
  for (std::size_t i = 0; i < in.steps.size(); ++i) {
    const measured_step& s = in.steps[i];
    double base = 0;
    for (int ph = 0; ph < step_phase_count; ++ph) {
      const double v = s.phase_mean[ph];
      chart.bar(static_cast<double>(i), base, base + v, 0.7, phase_colours[ph],
                step_name(s) + ": " + step_phases[ph] + " " + ms(v));
      base += v;
    }
  }
  return chart.svg("mean time per request in each phase, per step");
}

std::string pool_chart(const report_inputs& in) {
  double top = 0;
  for (const measured_step& s : in.steps)
    top = std::max({top, s.dials_per_s, s.waits_per_s, s.closes_per_s});
  svg_chart chart({"step (offered rate, repeat)", 0, 1, false, step_names(in), 1},
                  {"events per second (1/s)", 0, top > 0 ? top * 1.1 : 1, false, {}, 1});
  const char* names[] = {"dials/s", "waits/s", "closes/s"};
  const char* colours[] = {red, blue, green};
  for (int k = 0; k < 3; ++k) chart.legend_box(names[k], colours[k]);
  for (std::size_t i = 0; i < in.steps.size(); ++i) {
    const measured_step& s = in.steps[i];
    const double v[] = {s.dials_per_s, s.waits_per_s, s.closes_per_s};
    for (int k = 0; k < 3; ++k) {
      char tip[96];
      std::snprintf(tip, sizeof tip, "%s: %s %.1f", step_name(s).c_str(), names[k], v[k]);
      chart.bar(static_cast<double>(i) + (k - 1) * 0.25, 0, v[k], 0.22, colours[k], tip);
    }
  }
  return chart.svg("connection pool events per second, per step");
}

std::string validation_chart(const report_inputs& in) {
  const json::array& cases = in.validation->at("cases").get_array();
  std::vector<double> all;
  double rmax = 0;
  for (const json::value& c : cases) {
    const json::object& o = c.get_object();
    rmax = std::max(rmax, number(o.if_contains("rate"), 0));
    for (const char* k : {"low", "median", "high"})
      all.push_back(number(field(o, {"predicted", k})));
    if (const json::value* m = field(o, {"measured", "quantile"}); m && m->is_array())
      for (const json::value& q : m->get_array()) all.push_back(number(&q));
  }
  axis y = latency_axis(all, in.slo.latency);
  y.max = std::min(y.max, 10.0);
  svg_chart chart({"offered rate (req/s)", 0, rmax * 1.15, false, {}, 1}, y);
  chart.legend_box("predicted " + in.slo.name() + " of one run: 90 % interval, median", red);
  std::vector<double> mx, my;
  for (const json::value& c : cases) {
    const json::object& o = c.get_object();
    const double rate = number(o.if_contains("rate"), 0);
    // A side that fell over is null in the file: drawn at the top, as +inf.
    auto or_inf = [&](const char* k) {
      const json::value* v = field(o, {"predicted", k});
      return v && v->is_number() ? v->to_number<double>() : INFINITY;
    };
    chart.whisker(rate, or_inf("low"), or_inf("median"), or_inf("high"), red);
    if (const json::value* m = field(o, {"measured", "quantile"}); m && m->is_array())
      for (const json::value& q : m->get_array()) {
        mx.push_back(rate);
        my.push_back(q.is_number() ? q.to_number<double>() : INFINITY);
      }
  }
  chart.points(mx, my, blue, "measured " + in.slo.name() + " (each run)");
  chart.hline(in.slo.latency, grey, "SLO: " + in.slo.text());
  return chart.svg("validation: predicted interval against measured runs");
}

std::string steps_table(const report_inputs& in) {
  std::ostringstream os;
  os << "<table><tr><th>step</th><th>pool (run)</th><th>offered req/s</th><th>achieved req/s</th>"
        "<th>p50</th><th>p99</th>";
  for (const char* ph : step_phases) os << "<th>" << ph << " (mean)</th>";
  os << "<th>dials/s</th><th>waits/s</th><th>closes/s</th></tr>\n";
  for (const measured_step& s : in.steps) {
    os << "<tr><td>" << s.index << (s.stopped_early ? " (stopped early)" : "") << "</td><td>"
       << esc(s.label) << "</td><td>" << s.rate << "</td><td>" << fixed(s.achieved, 1)
       << "</td><td>" << ms(s.p50) << "</td><td>" << ms(s.p99) << "</td>";
    for (double v : s.phase_mean) os << "<td>" << (s.has_phases ? ms(v) : "-") << "</td>";
    if (s.has_pool)
      os << "<td>" << fixed(s.dials_per_s, 1) << "</td><td>" << fixed(s.waits_per_s, 1)
         << "</td><td>" << fixed(s.closes_per_s, 1) << "</td>";
    else
      os << "<td>-</td><td>-</td><td>-</td>";
    os << "</tr>\n";
  }
  os << "</table>\n";
  return os.str();
}

std::string predicted_table(const report_inputs& in, const predicted_curve& c) {
  std::ostringstream os;
  os << "<table><tr><th>offered req/s</th><th>p50</th><th>p99 [95 % CI]</th><th>one run's "
     << in.slo.name() << " median [90 %]</th><th>P(" << esc(in.slo.text())
     << ")</th><th>throughput req/s</th><th>CPU</th><th>dials/s</th><th>stable</th></tr>\n";
  for (const sweep_result& r : c.points) {
    const prediction& p = r.p;
    const bool known = p.stable && p.replications > 0;
    os << "<tr><td>" << r.point.rate << "</td><td>" << (known ? ms(p.all_requests.p50.value) : "-")
       << "</td><td>";
    if (known)
      os << ms(p.all_requests.p99.value) << " [" << ms(p.all_requests.p99.ci_low) << ", "
         << ms(p.all_requests.p99.ci_high) << "]";
    else
      os << "-";
    os << "</td><td>";
    if (p.live.computed)
      os << ms(p.live.median) << " [" << ms(p.live.low) << ", " << ms(p.live.high) << "]";
    os << "</td><td>" << (p.live.p_slo >= 0 ? fixed(p.live.p_slo, 2) : "-") << "</td><td>"
       << (p.replications > 0 ? fixed(p.throughput.value, 1) : "-") << "</td><td>";
    for (const auto& [name, e] : p.utilization)
      if (name == "cpu" || name == "service_cpu") os << fixed(100 * e.value, 0) << " %";
    os << "</td><td>"
       << (p.has_pool && p.replications > 0 ? fixed(p.pool.dials_per_s.value, 1) : "-")
       << "</td><td>" << (p.stable ? "yes" : "no: " + esc(p.reason)) << "</td></tr>\n";
  }
  os << "</table>\n";
  return os.str();
}

std::string plan_section(const report_inputs& in) {
  const json::object& p = *in.plan;
  std::ostringstream os;
  os << "<h2>The plan</h2>\n";
  const json::value* summary = p.if_contains("summary");
  if (summary && summary->is_array()) {
    os << "<pre>";
    for (const json::value& line : summary->get_array())
      if (line.is_string()) os << esc(std::string(line.get_string())) << "\n";
    os << "</pre>\n";
  }
  auto row = [&](const std::string& name, const std::string& value) {
    os << "<tr><th>" << esc(name) << "</th><td>" << value << "</td></tr>\n";
  };
  os << "<table class=\"keys\">\n";
  row("target load", cell(field(p, {"target_rps"})) + " req/s");
  row("SLO, confidence",
      cell(field(p, {"slo", "text"})) + ", " + cell(field(p, {"confidence"}), 2));
  const json::value* reason = field(p, {"reason"});
  row("feasible", cell(field(p, {"feasible"})) +
                      (reason && reason->is_string() ? ": " + cell(reason) : std::string()));
  row("pool planned with", "max_open " + cell(field(p, {"pool", "max_open"})) + ", max_idle " +
                               cell(field(p, {"pool", "max_idle"})));
  row("capacity per instance", cell(field(p, {"capacity", "rps"})) + " req/s [" +
                                   cell(field(p, {"capacity", "low"})) + ", " +
                                   cell(field(p, {"capacity", "high"})) + "]");
  row("instances", cell(field(p, {"instances"})) + " (redundancy " +
                       cell(field(p, {"redundancy"})) + ", zones " + cell(field(p, {"zones"})) +
                       ")");
  const double p99 = number(field(p, {"at_target", "p99"}));
  row("at target, per instance",
      cell(field(p, {"at_target", "rps_per_instance"})) + " req/s, p99 " + ms(p99) + " [" +
          ms(number(field(p, {"at_target", "p99_low"}))) + ", " +
          ms(number(field(p, {"at_target", "p99_high"}))) + "], service CPU " +
          fixed(100 * number(field(p, {"at_target", "service_cpu"})), 0) + " %, dials " +
          cell(field(p, {"at_target", "dials_per_s"}), 1) + "/s");
  row("database", cell(field(p, {"database", "cores"})) + " cores, CPU at target " +
                      fixed(100 * number(field(p, {"database", "cpu_at_target"})), 0) +
                      " %, connections peak " + cell(field(p, {"database", "connections_peak"})) +
                      " of " + cell(field(p, {"database", "max_connections"})) + ", dials " +
                      cell(field(p, {"database", "dials_per_s"}), 1) + "/s, bottleneck " +
                      cell(field(p, {"database", "bottleneck"})));
  const json::value* rec = p.if_contains("recommendation");
  if (rec && rec->is_object()) {
    const json::object& r = rec->get_object();
    row("recommended pool", "max_open " + cell(r.if_contains("max_open")) + ", max_idle " +
                                cell(r.if_contains("max_idle")) + ": capacity " +
                                cell(field(r, {"capacity", "rps"})) + " req/s, " +
                                cell(r.if_contains("instances")) + " instances");
  } else {
    row("recommended pool", "the setting planned with (no other gives more capacity)");
  }
  os << "</table>\n";
  return os.str();
}

std::string validation_section(const report_inputs& in) {
  const json::object& v = *in.validation;
  std::ostringstream os;
  os << "<h2>Validation: cases the model was not fitted on</h2>\n<p>"
     << cell(v.if_contains("repeats")) << " live runs of "
     << cell(v.if_contains("step_duration"), 0) << " s per case against "
     << cell(v.if_contains("target")) << ", " << cell(v.if_contains("slo"))
     << ". A run inside its predicted 90 % interval is what the model promises for 9 runs in "
        "10.</p>\n";
  os << validation_chart(in);
  os << "<table><tr><th>offered req/s</th><th>predicted median [90 %]</th><th>P(SLO)</th>"
        "<th>measured runs</th><th>inside</th><th>error of the median</th></tr>\n";
  for (const json::value& c : v.at("cases").get_array()) {
    const json::object& o = c.get_object();
    auto lat = [&](const char* k) {
      const json::value* x = field(o, {"predicted", k});
      return x && x->is_number() ? ms(x->to_number<double>()) : std::string("fell over");
    };
    std::string measured;
    if (const json::value* m = field(o, {"measured", "quantile"}); m && m->is_array())
      for (const json::value& q : m->get_array())
        measured += (measured.empty() ? "" : ", ") +
                    (q.is_number() ? ms(q.to_number<double>()) : "fell over");
    const double error = number(o.if_contains("error"));
    os << "<tr><td>" << cell(o.if_contains("rate")) << "</td><td>" << lat("median") << " ["
       << lat("low") << ", " << lat("high") << "]</td><td>"
       << cell(field(o, {"predicted", "p_slo"}), 2) << "</td><td>" << measured << "</td><td>"
       << cell(o.if_contains("inside")) << "</td><td>"
       << (std::isfinite(error) ? fixed(100 * error, 0) + " %" : "-") << "</td></tr>\n";
  }
  os << "</table>\n";
  return os.str();
}

constexpr const char* page_style = R"(
body { font-family: system-ui, sans-serif; font-size: 14px; color: #222; margin: 24px auto;
       max-width: 1000px; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
p.provenance { color: #555; margin-top: 0; }
p.knee-warning { color: #8a1c00; background: #fff3e0; padding: 4px 8px; }
.headline { background: #f4f7fb; border-left: 4px solid #0072B2; padding: 8px 12px; }
svg { display: block; margin: 8px 0; background: #fff; }
svg text { fill: #333; font-family: system-ui, sans-serif; }
svg text.axis-label { font-size: 13px; font-weight: 600; }
table { border-collapse: collapse; margin: 8px 0; font-size: 12px; }
th, td { border: 1px solid #ddd; padding: 3px 6px; text-align: right; }
th { background: #f4f4f4; }
table.keys th, table.keys td { text-align: left; }
pre { background: #f8f8f8; padding: 8px; overflow-x: auto; }
h3 { font-size: 14px; margin: 10px 0 0; }
.panels { display: grid; grid-template-columns: repeat(2, 470px); gap: 4px 12px; }
svg text.no-data { font-size: 14px; fill: #D55E00; }
)";

}  // namespace

int report_chart_count(const report_inputs& in) {
  return 3 + (in.validation ? 1 : 0) + (in.live ? static_cast<int>(in.live->panels.size()) : 0);
}

std::string report_html(const report_inputs& in) {
  auto prov = [&](const char* k) {
    const json::value* v = in.provenance.if_contains(k);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
  };
  auto prov_number = [&](const char* k) { return number(in.provenance.if_contains(k)); };
  const std::string target = prov("target").empty() ? "(target not recorded)" : prov("target");
  std::size_t runs = 0;
  for (const measured_step& s : in.steps) runs = std::max<std::size_t>(runs, s.repeat + 1);
  const predicted_curve& main = in.curves.front();

  std::ostringstream os;
  os << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
     << "<title>Headroom report: " << esc(prov("method")) << " " << esc(target) << "</title>\n"
     << "<style>" << page_style << "</style></head><body>\n";
  os << "<h1>Headroom report: " << esc(prov("method")) << " " << esc(target) << "</h1>\n";
  os << "<p class=\"provenance\">Calibration <code>" << esc(in.calibration_path)
     << "</code>: " << in.steps.size() << " steps (" << runs << " run" << (runs == 1 ? "" : "s")
     << " of each rate), " << format_duration(prov_number("step_duration")) << " measured after "
     << format_duration(prov_number("warmup")) << " warm-up, on " << fixed(in.model.cores, 0)
     << " cores; the model's pool: Go " << to_string(in.model.pool.go) << ", " << esc(main.setting)
     << ". Report generated " << esc(in.generated_at) << ".</p>\n";
  // The knee of one curve in words; one at the last rate predicted is only a lower bound.
  auto knee_words = [](const predicted_curve& c) {
    std::ostringstream w;
    if (c.knee <= 0) {
      w << "at no rate predicted";
    } else {
      w << "up to <b>" << c.knee << " req/s</b>";
      if (!c.points.empty() && c.knee >= c.points.back().point.rate)
        w << " or more (the highest rate predicted)";
    }
    return w.str();
  };
  os << "<p class=\"headline\">At the calibrated pool setting one "
     << format_duration(in.model.run.live_length) << " run meets <b>" << esc(in.slo.text())
     << "</b> with probability at least " << fixed(in.confidence, 2) << " " << knee_words(main)
     << " (the knee)";
  for (std::size_t i = 1; i < in.curves.size(); ++i)
    os << "; at the plan's recommended pool (" << esc(in.curves[i].setting) << ") "
       << knee_words(in.curves[i]);
  os << ".</p>\n";
  if (const calibrate::knee_comparison& k = in.knee_check; k.available) {
    os << "<p class=\"" << (k.disagrees ? "knee-warning" : "provenance") << "\">Checked against "
       << "the steps (the highest rate at which most " << format_duration(k.step_length)
       << " runs meet the SLO): measured " << (k.measured_is_lower_bound ? "at least " : "")
       << calibrate::knee_rate_text(k.measured) << " req/s, the model "
       << (k.predicted_is_lower_bound ? "over " : "") << calibrate::knee_rate_text(k.predicted)
       << " req/s";
    if (k.disagrees) os << ". " << esc(k.line);
    os << ".</p>\n";
  }

  os << "<h2>Latency against offered rate</h2>\n<p>Points: what each calibration run measured "
        "(all requests, failed ones at the time they failed). Lines: the model's long-run p50 and "
        "p99. Shaded: where the "
     << esc(in.slo.name()) << " of one " << format_duration(in.model.run.live_length)
     << " run falls 9 times in 10 (runs vary: the machine's speed, the tail's luck). A run that "
        "fell over is drawn on the top edge.</p>\n";
  os << latency_chart(in);
  os << "<h2>Where the time goes, per step</h2>\n<p>Mean time per request in each phase "
        "(the service's Server-Timing header): waiting for a worker (queue), for a busy "
        "connection (wait), opening a new one (dial), the query, and giving the connection back "
        "(release).</p>\n";
  os << phase_chart(in);
  os << "<h2>The connection pool, per step</h2>\n<p>From the service's own counters: new "
        "connections opened (dials), requests that waited for a busy connection, connections "
        "closed (most because more than max_idle were idle).</p>\n";
  os << pool_chart(in);
  if (in.live) os << live_section(*in.live, in.slo);
  if (in.plan) os << plan_section(in);
  if (in.validation) os << validation_section(in);
  for (const predicted_curve& c : in.curves) {
    os << "<h2>Predicted: " << esc(c.label) << "</h2>\n";
    os << predicted_table(in, c);
  }
  os << "<h2>Measured steps</h2>\n" << steps_table(in);
  if (!in.not_fitted.empty()) {
    os << "<h2>Not fitted</h2>\n<ul>";
    for (const std::string& s : in.not_fitted) os << "<li>" << esc(s) << "</li>";
    os << "</ul>\n";
  }
  os << "</body></html>\n";
  return os.str();
}

}  // namespace headroom::report
