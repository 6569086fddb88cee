// Fetches a Prometheus /metrics page over plain HTTP (one blocking GET with one deadline) and
// parses it: what `headroom calibrate --metrics URL` and `--node-metrics URL` read every step.
// The same blocking request, with a method and a JSON body, changes the service's pool between
// two settings of a calibration (pool_settings.hpp).
#pragma once

#include <stdexcept>
#include <string>

#include "prometheus_text.hpp"

namespace headroom::calibrate {

// A scrape that failed: refused, timed out, not 200, or not Prometheus text. One line that names
// the URL and the problem, e.g.
//   "cannot scrape http://127.0.0.1:9/metrics: connection refused"
//   "http://127.0.0.1:8080/ is not Prometheus text: line 1: expected a metric name or '#': ..."
struct metrics_scrape_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The answer to one GET, whatever its status (Prometheus's API explains a bad query in the body
// of a 400).
struct http_reply {
  unsigned status = 0;
  std::string reason;
  std::string body;
};

// GET url (http://host[:port]/path?query) with `accept` as the Accept header, one deadline of
// `timeout` seconds for resolving, connecting, sending and reading together. Throws
// metrics_scrape_error "URL: problem" (refused, timed out, closed) and load_input_error for a
// malformed URL. Shared by the scrape below and the Prometheus API client.
http_reply http_get(const std::string& url, double timeout, const std::string& accept);

// The same with another method and a JSON body (Content-Type application/json; none when
// empty), e.g. http_request("PUT", url, 5, R"({"max_open": 8})"). Same errors as http_get.
http_reply http_request(const std::string& method, const std::string& url, double timeout,
                        const std::string& json_body);

// The body of GET url (http://host[:port]/path, parsed by open_loop_generator's
// parse_target_url, which throws load_input_error for a malformed URL). `timeout` seconds cover
// resolving, connecting, sending and reading together. Throws metrics_scrape_error.
std::string fetch_metrics_text(const std::string& url, double timeout = 5);

// fetch_metrics_text, then metrics_snapshot::parse; throws metrics_scrape_error for both.
metrics_snapshot scrape_metrics(const std::string& url, double timeout = 5);

}  // namespace headroom::calibrate
