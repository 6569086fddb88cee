// A client of Prometheus's HTTP query API (/api/v1/query and /api/v1/query_range): what
// `headroom calibrate --prometheus` and `headroom report --prometheus` read history through.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace headroom::calibrate {

// One line naming the URL and the problem: unreachable, not Prometheus, or Prometheus's own
// error text for a bad query.
struct prometheus_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One series of a result: its labels (__name__ included when Prometheus kept it) and its
// samples as (unix seconds, value). An instant query gives one point per series.
struct prometheus_series {
  std::map<std::string, std::string> labels;
  std::vector<std::pair<double, double>> points;
};

class prometheus_client {
 public:
  // base_url "http://127.0.0.1:9090" (a trailing slash or a path prefix is kept as given);
  // every call is one blocking GET with a deadline of `timeout` seconds.
  explicit prometheus_client(std::string base_url, double timeout = 10);

  // The PromQL expression evaluated every `step` seconds from `from` to `to` (unix seconds).
  std::vector<prometheus_series> query_range(const std::string& promql, double from, double to,
                                             double step) const;
  // The PromQL expression evaluated at one instant (unix seconds). A scalar result comes back
  // as one series without labels.
  std::vector<prometheus_series> query(const std::string& promql, double at) const;

  const std::string& base_url() const { return base_url_; }

 private:
  std::string base_url_;
  double timeout_;
  std::vector<prometheus_series> get(const std::string& api_path,
                                     const std::vector<std::pair<std::string, std::string>>& params,
                                     const std::string& promql) const;
};

// "now", "now-10m" (any duration parse_duration reads, after now- or now+), unix seconds
// "1764400000", or RFC 3339 "2026-11-29T08:00:00Z" (fractional seconds and a +hh:mm offset
// allowed) -> unix seconds. Throws std::invalid_argument naming the text.
double parse_time_point(const std::string& text, double now);

}  // namespace headroom::calibrate
