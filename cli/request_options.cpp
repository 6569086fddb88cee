// The request flags shared by load, calibrate and validate (request_options.hpp).
#include "request_options.hpp"

#include <fstream>
#include <iostream>
#include <sstream>

#include "duration_flag.hpp"
#include "metrics_scrape.hpp"

namespace headroom::cli {
namespace cal = headroom::calibrate;

void add_request_options(CLI::App* app, request_args& a) {
  app->add_option("--target", a.targets, "URL http://host:port/path (repeat: round-robin)");
  app->add_option("--method", a.method, "HTTP method")->capture_default_str();
  app->add_option("--header", a.headers, "'Name: value' (repeatable)");
  app->add_option("--body", a.body_file, "Request body from FILE");
  app->add_option("--max-connections", a.max_connections,
                  "Keep-alive connections at most (connections); more requests wait, as 'late'")
      ->capture_default_str();
  app->add_option("--threads", a.threads, "Generator threads")->capture_default_str();
  add_duration_flag(app, "--timeout", a.timeout,
                    "One deadline per request: connect, write and read together");
  app->add_option("--arrivals", a.arrivals, "uniform (evenly spaced) or poisson")
      ->capture_default_str();
  app->add_option("--seed", a.seed, "Seed for Poisson arrivals")->capture_default_str();
}

std::string metrics_url_for(const std::string& given, const std::string& target_url,
                            const std::string& command) {
  if (given == "none") return "";
  if (!given.empty()) {
    try {
      cal::scrape_metrics(given);
    } catch (const cal::metrics_scrape_error& e) {
      throw cal::load_input_error(std::string("--metrics: ") + e.what());  // bad input: exit 2
    }
    return given;
  }
  const cal::http_target t = cal::parse_target_url(target_url);
  const std::string guess = "http://" + t.host + ":" + t.port + "/metrics";
  try {
    cal::scrape_metrics(guess, 2);
    return guess;
  } catch (const std::exception&) {
    std::cerr << command << ": no /metrics at " << guess
              << ": measuring from the client alone (give --metrics URL)\n";
    return "";
  }
}

std::pair<std::string, std::string> parse_header(const std::string& h) {
  const auto colon = h.find(':');
  if (colon == std::string::npos) throw cal::load_input_error("--header is 'Name: value': " + h);
  std::string value = h.substr(colon + 1);
  value.erase(0, value.find_first_not_of(" \t"));
  return {h.substr(0, colon), value};
}

std::string read_body_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw cal::load_input_error("cannot read body file " + path);
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw cal::load_input_error("cannot read body file " + path);
  return s.str();
}

cal::load_options build_request(const request_args& a) {
  if (a.targets.empty()) throw cal::load_input_error("--target: give the service's URL");
  cal::load_options o;
  o.targets = a.targets;
  o.method = a.method;
  o.threads = a.threads;
  o.max_connections = a.max_connections;
  o.timeout = a.timeout;
  o.seed = a.seed;
  try {
    o.arrivals = cal::parse_arrival_process(a.arrivals);
  } catch (const std::invalid_argument& e) {
    throw cal::load_input_error(std::string("--arrivals: ") + e.what());
  }
  for (const auto& h : a.headers) o.headers.push_back(parse_header(h));
  if (!a.body_file.empty()) o.body = read_body_file(a.body_file);
  return o;
}

}  // namespace headroom::cli
