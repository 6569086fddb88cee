// A sweep as a table for spreadsheets (CSV) and as JSON for programs (SCENARIO.md "The prediction"
// for each point).
#include "sweep_report.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <iomanip>
#include <string>

#include "prediction_report.hpp"

namespace headroom {

namespace json = boost::json;

namespace {

// Every resource named by any point, in order of first appearance (points refused up front
// name fewer).
std::vector<std::string> utilization_names(const std::vector<sweep_result>& results) {
  std::vector<std::string> names;
  for (const sweep_result& r : results)
    for (const auto& [name, e] : r.p.utilization)
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  return names;
}

// One CSV cell: full precision so a reader gets back the number written; empty when unknown.
class csv_row {
 public:
  explicit csv_row(std::ostream& out) : out_(out) {}
  csv_row& operator<<(double x) {
    sep();
    if (std::isfinite(x)) out_ << std::setprecision(9) << x;
    return *this;
  }
  csv_row& text(const std::string& s) {
    sep();
    out_ << s;
    return *this;
  }
  csv_row& empty(int n = 1) {
    for (int i = 0; i < n; ++i) sep();
    return *this;
  }
  ~csv_row() { out_ << "\n"; }

 private:
  void sep() {
    if (!first_) out_ << ",";
    first_ = false;
  }
  std::ostream& out_;
  bool first_ = true;
};

}  // namespace

void write_sweep_csv(std::ostream& out, const std::vector<sweep_result>& results) {
  const auto util = utilization_names(results);
  out << "rate,max_open,max_idle,cores,stable,replications,"
         "p50,p50_ci_low,p50_ci_high,p99,p99_ci_low,p99_ci_high,"
         "live_quantile,live_low,live_median,live_high,p_slo,p_stable,"
         "throughput_rps,error_rate";
  for (const std::string& u : util) out << ",utilization_" << u;
  out << ",dials_per_s,closes_per_s,waits_per_s,wait_timeouts_per_s\n";
  for (const sweep_result& r : results) {
    const prediction& p = r.p;
    csv_row row(out);
    row << r.point.rate << r.point.max_open << r.point.max_idle << r.point.cores;
    row.text(p.stable ? "true" : "false") << p.replications;
    // Percentiles of a run whose backlog kept growing describe only how long it ran: none.
    const latency_estimate& all = p.all_requests;
    if (p.stable && p.replications > 0) {
      for (const estimate* e : {&all.p50, &all.p99}) {
        row << e->value;
        if (e->has_ci)
          row << e->ci_low << e->ci_high;
        else
          row.empty(2);
      }
    } else {
      row.empty(6);
    }
    if (p.live.computed) {
      // A live run that fell over has an infinite percentile: an empty cell, as JSON's null.
      row << p.live.quantile << p.live.low << p.live.median << p.live.high;
      if (p.live.p_slo >= 0)
        row << p.live.p_slo;
      else
        row.empty();
      row << p.live.p_stable;
    } else {
      row.empty(6);
    }
    if (p.replications == 0) {  // refused up front: nothing simulated
      row.empty(2 + static_cast<int>(util.size()) + 4);
      continue;
    }
    row << p.throughput.value << p.error_rate.value;
    for (const std::string& u : util) {
      auto it = std::find_if(p.utilization.begin(), p.utilization.end(),
                             [&](const auto& x) { return x.first == u; });
      if (it != p.utilization.end())
        row << it->second.value;
      else
        row.empty();
    }
    if (p.has_pool)
      row << p.pool.dials_per_s.value << p.pool.closes_per_s.value << p.pool.waits_per_s.value
          << p.pool.wait_timeouts_per_s.value;
    else
      row.empty(4);
  }
}

json::value sweep_to_json(const scenario& base, const std::vector<sweep_result>& results) {
  json::array points;
  for (const sweep_result& r : results) {
    points.push_back(
        json::object{{"rate", r.point.rate},
                     {"max_open", r.point.max_open},
                     {"max_idle", r.point.max_idle},
                     {"cores", r.point.cores},
                     {"prediction", prediction_to_json(scenario_at(base, r.point), r.p)}});
  }
  return json::object{
      {"format", "headroom-sweep/1"}, {"scenario", base.name}, {"points", std::move(points)}};
}

}  // namespace headroom
