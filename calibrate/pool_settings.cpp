#include "pool_settings.hpp"

#include <boost/json.hpp>
#include <stdexcept>

#include "metrics_scrape.hpp"
#include "target_url.hpp"

namespace headroom::calibrate {
namespace {

int parse_limit(const std::string& text, const std::string& entry) {
  std::size_t used = 0;
  int v = -1;
  try {
    v = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size() || v < 0)
    throw std::invalid_argument("--pool-settings: '" + entry +
                                "' is not a setting (current, warm, or OPEN/IDLE such as 8/8: "
                                "max_open and max_idle, whole numbers >= 0, max_open 0 = no "
                                "limit)");
  return v;
}

// {"max_open": N, "max_idle": N}, as the service answers GET and PUT /pool.
pool_limits parse_reply(const std::string& url, const http_reply& r) {
  try {
    const boost::json::object o = boost::json::parse(r.body).as_object();
    pool_limits p;
    p.max_open = static_cast<int>(o.at("max_open").to_number<std::int64_t>());
    p.max_idle = static_cast<int>(o.at("max_idle").to_number<std::int64_t>());
    return p;
  } catch (const std::exception&) {
    throw std::runtime_error(
        url + ": the answer is not {\"max_open\": N, \"max_idle\": N}: " + r.body.substr(0, 200));
  }
}

std::string status_text(const http_reply& r) {
  std::string s = "HTTP " + std::to_string(r.status) + " " + r.reason;
  if (!r.body.empty()) s += ": " + r.body.substr(0, 200);
  return s;
}

}  // namespace

pool_limits as_applied(pool_limits p) {
  if (p.max_open > 0 && p.max_idle > p.max_open) p.max_idle = p.max_open;
  return p;
}

std::string pool_label(const pool_limits& p) {
  return "max_open " + std::to_string(p.max_open) + ", max_idle " + std::to_string(p.max_idle);
}

std::vector<std::optional<pool_limits>> parse_pool_settings(const std::string& text, int cores) {
  std::vector<std::optional<pool_limits>> out;
  std::vector<std::string> entries;  // as written, to name the first of two equal settings
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string entry = text.substr(start, comma - start);
    std::optional<pool_limits> setting;
    if (entry == "warm") {
      setting = warm_pool(cores);
    } else if (entry != "current") {
      const std::size_t slash = entry.find('/');
      if (slash == std::string::npos) parse_limit("", entry);  // throws, naming the entry
      setting = pool_limits{parse_limit(entry.substr(0, slash), entry),
                            parse_limit(entry.substr(slash + 1), entry)};
    }
    for (std::size_t k = 0; k < out.size(); ++k) {
      if (out[k] == setting)
        throw std::invalid_argument("--pool-settings: '" + entry + "' is listed twice");
      if (out[k] && setting && as_applied(*out[k]) == as_applied(*setting))
        throw std::invalid_argument("--pool-settings: '" + entry + "' is the same setting as '" +
                                    entries[k] + "' (" + pool_label(as_applied(*setting)) +
                                    ": Go keeps max_idle <= max_open)");
    }
    out.push_back(setting);
    entries.push_back(entry);
    start = comma + 1;
  }
  return out;
}

pool_limits warm_pool(int cores) { return {2 * cores, 2 * cores}; }

std::string pool_admin_url(const std::string& target_url) {
  const http_target t = parse_target_url(target_url);
  return "http://" + t.host + ":" + t.port + "/pool";
}

std::optional<pool_limits> read_pool_limits(const std::string& url, double timeout) {
  http_reply r;
  try {
    r = http_request("GET", url, timeout, "");
  } catch (const metrics_scrape_error& e) {
    throw std::runtime_error(std::string("cannot read the pool setting: ") + e.what());
  }
  if (r.status == 404) return std::nullopt;
  if (r.status != 200)
    throw std::runtime_error("cannot read the pool setting: " + url + ": " + status_text(r));
  return parse_reply(url, r);
}

pool_limits apply_pool_limits(const std::string& url, const pool_limits& p, double timeout) {
  const std::string body = R"({"max_open": )" + std::to_string(p.max_open) + R"(, "max_idle": )" +
                           std::to_string(p.max_idle) + "}";
  http_reply r;
  try {
    r = http_request("PUT", url, timeout, body);
  } catch (const metrics_scrape_error& e) {
    throw std::runtime_error("cannot set the pool to " + pool_label(p) + ": " + e.what());
  }
  if (r.status != 200)
    throw std::runtime_error("cannot set the pool to " + pool_label(p) + ": " + url + ": " +
                             status_text(r));
  return parse_reply(url, r);
}

}  // namespace headroom::calibrate
