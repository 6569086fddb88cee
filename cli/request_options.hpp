// The request a command sends and how (--target, --method, --header, --body, connections,
// threads, timeout, arrivals): the same flags for load, calibrate and validate.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <utility>
#include <vector>

#include "open_loop_generator.hpp"

namespace headroom::cli {

struct request_args {
  std::vector<std::string> targets;
  std::string method = "GET";
  std::vector<std::string> headers;  // "Name: value"
  std::string body_file;
  int max_connections = 100;
  int threads = 1;
  double timeout = 10;  // seconds
  std::string arrivals = "uniform";
  std::uint64_t seed = 1;
};

// Registers the flags on `app`, with their defaults shown.
void add_request_options(CLI::App* app, request_args& args);

// The service's /metrics URL: `given` (checked: a URL that is not Prometheus text is bad input),
// "" for "none", else the target's own http://host:port/metrics if it answers with Prometheus
// text (a note on stderr, prefixed with `command`, if it does not).
std::string metrics_url_for(const std::string& given, const std::string& target_url,
                            const std::string& command);

// "Name: value" to its two parts; throws calibrate::load_input_error for a header without ':'.
std::pair<std::string, std::string> parse_header(const std::string& h);
// The whole file, for --body; throws calibrate::load_input_error naming it.
std::string read_body_file(const std::string& path);

// Load options without a schedule; throws calibrate::load_input_error naming the bad flag.
calibrate::load_options build_request(const request_args& args);

}  // namespace headroom::cli
