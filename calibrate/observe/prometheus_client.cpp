// Prometheus's query API over metrics_scrape's http_get (one GET, one deadline), its JSON read
// with Boost.JSON, and the time points people type for a window of history.
#include "prometheus_client.hpp"

#include <boost/json.hpp>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "duration.hpp"
#include "metrics_scrape.hpp"
#include "target_url.hpp"

namespace headroom::calibrate {
namespace json = boost::json;
namespace {

// RFC 3986: everything but the unreserved characters is percent-encoded (PromQL has braces,
// quotes, spaces and '+').
std::string url_encode(const std::string& text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string seconds_text(double t) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", t);  // Prometheus keeps milliseconds
  return buf;
}

// Prometheus writes sample values as strings: "0.25", "NaN", "+Inf", "-Inf".
double sample_value(const json::value& v) {
  if (!v.is_string()) throw std::invalid_argument("a sample value is not a string");
  const std::string s(v.get_string());
  if (s == "NaN") return std::nan("");
  if (s == "+Inf") return HUGE_VAL;
  if (s == "-Inf") return -HUGE_VAL;
  std::size_t used = 0;
  double x = std::stod(s, &used);
  if (used != s.size()) throw std::invalid_argument("a sample value is not a number: " + s);
  return x;
}

double sample_time(const json::value& v) {
  if (v.is_double()) return v.get_double();
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  throw std::invalid_argument("a sample time is not a number");
}

std::pair<double, double> sample(const json::value& v) {
  const json::array& pair = v.as_array();
  if (pair.size() != 2) throw std::invalid_argument("a sample is not [time, value]");
  return {sample_time(pair[0]), sample_value(pair[1])};
}

// data.result of a success answer, whatever its type (matrix, vector, scalar).
std::vector<prometheus_series> read_result(const json::object& data) {
  const std::string type(data.at("resultType").as_string());
  const json::value& result = data.at("result");
  std::vector<prometheus_series> out;
  if (type == "scalar") {
    out.push_back({{}, {sample(result)}});
    return out;
  }
  if (type != "matrix" && type != "vector")
    throw std::invalid_argument("unexpected resultType " + type);
  for (const json::value& item : result.as_array()) {
    const json::object& o = item.as_object();
    prometheus_series s;
    for (const auto& kv : o.at("metric").as_object())
      s.labels[std::string(kv.key())] = std::string(kv.value().as_string());
    if (type == "matrix") {
      for (const json::value& p : o.at("values").as_array()) s.points.push_back(sample(p));
    } else {
      s.points.push_back(sample(o.at("value")));
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

prometheus_client::prometheus_client(std::string base_url, double timeout)
    : base_url_(std::move(base_url)), timeout_(timeout) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  try {
    parse_target_url(base_url_);  // a malformed URL fails here, before any query
  } catch (const load_input_error& e) {
    throw prometheus_error(std::string("Prometheus URL: ") + e.what());
  }
}

std::vector<prometheus_series> prometheus_client::query_range(const std::string& promql,
                                                              double from, double to,
                                                              double step) const {
  return get("/api/v1/query_range",
             {{"query", promql},
              {"start", seconds_text(from)},
              {"end", seconds_text(to)},
              {"step", seconds_text(step)}},
             promql);
}

std::vector<prometheus_series> prometheus_client::query(const std::string& promql,
                                                        double at) const {
  return get("/api/v1/query", {{"query", promql}, {"time", seconds_text(at)}}, promql);
}

std::vector<prometheus_series> prometheus_client::get(
    const std::string& api_path, const std::vector<std::pair<std::string, std::string>>& params,
    const std::string& promql) const {
  std::string url = base_url_ + api_path;
  char sep = '?';
  for (const auto& [name, value] : params) {
    url += sep + name + "=" + url_encode(value);
    sep = '&';
  }
  http_reply reply;
  try {
    reply = http_get(url, timeout_, "application/json");
  } catch (const metrics_scrape_error& e) {
    // e.what() names the whole URL with its query; the base URL reads better.
    const std::string what = e.what();
    const std::string problem = what.rfind(url + ": ", 0) == 0 ? what.substr(url.size() + 2) : what;
    throw prometheus_error("cannot reach Prometheus at " + base_url_ + ": " + problem);
  }

  // Prometheus answers 200 with the data, or 400/422/503 with {"status":"error","error":...};
  // anything else that is not such JSON is not Prometheus.
  json::value doc;
  boost::system::error_code ec;
  doc = json::parse(reply.body, ec);
  const json::object* o = !ec && doc.is_object() ? &doc.get_object() : nullptr;
  const json::value* status = o ? o->if_contains("status") : nullptr;
  if (!status || !status->is_string()) {
    std::string problem = "HTTP " + std::to_string(reply.status) + " " + reply.reason;
    if (reply.status == 200) problem = "the answer is not Prometheus API JSON";
    throw prometheus_error(base_url_ + " is not a Prometheus server (" + api_path + ": " + problem +
                           ")");
  }
  if (status->get_string() != "success") {
    const json::value* error = o->if_contains("error");
    std::string text = error && error->is_string() ? std::string(error->get_string())
                                                   : "status " + std::string(status->get_string());
    throw prometheus_error("Prometheus at " + base_url_ + " refused the query '" + promql +
                           "': " + text);
  }
  try {
    return read_result(o->at("data").as_object());
  } catch (const std::exception& e) {
    throw prometheus_error("Prometheus at " + base_url_ + " gave an unreadable answer to '" +
                           promql + "': " + e.what());
  }
}

double parse_time_point(const std::string& text, double now) {
  auto bad = [&](const std::string& why) {
    return std::invalid_argument("not a time: '" + text + "' (" + why +
                                 "; try now, now-10m, 1764400000 or 2026-11-29T08:00:00Z)");
  };
  if (text == "now") return now;
  if (text.rfind("now-", 0) == 0 || text.rfind("now+", 0) == 0) {
    double d = 0;
    try {
      d = parse_duration(text.substr(4));
    } catch (const std::invalid_argument& e) {
      throw bad(e.what());
    }
    return text[3] == '-' ? now - d : now + d;
  }
  if (!text.empty() && text.find_first_not_of("0123456789.") == std::string::npos) {
    std::size_t used = 0;
    double t = 0;
    try {
      t = std::stod(text, &used);
    } catch (const std::exception&) {
      throw bad("not a number");
    }
    if (used != text.size()) throw bad("not a number");
    return t;
  }
  // RFC 3339: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm); 't' and ' ' as separators too.
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed != 19)
    throw bad("expected RFC 3339 date and time");
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60)
    throw bad("a field is out of range");
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::string rest = text.substr(19);
  double fraction = 0;
  if (!rest.empty() && rest[0] == '.') {
    std::size_t digits = rest.find_first_not_of("0123456789", 1);
    if (digits == 1 || digits == std::string::npos) throw bad("bad fraction of a second");
    fraction = std::stod(rest.substr(0, digits));  // ".5"
    rest = rest.substr(digits);
  }
  double offset = 0;
  if (rest == "Z" || rest == "z") {
    offset = 0;
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
             std::isdigit(static_cast<unsigned char>(rest[1])) &&
             std::isdigit(static_cast<unsigned char>(rest[2])) &&
             std::isdigit(static_cast<unsigned char>(rest[4])) &&
             std::isdigit(static_cast<unsigned char>(rest[5]))) {
    offset = (std::stoi(rest.substr(1, 2)) * 60 + std::stoi(rest.substr(4, 2))) * 60.0;
    if (rest[0] == '-') offset = -offset;
  } else {
    throw bad("expected Z or an offset such as +01:00 after the time");
  }
  return static_cast<double>(timegm(&tm)) + fraction - offset;
}

}  // namespace headroom::calibrate
