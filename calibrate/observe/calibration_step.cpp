// A calibration step to and from JSON (calibration_step.hpp).
#include "calibration_step.hpp"

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace headroom::calibrate {
namespace json = boost::json;
namespace {

json::value optional_number(const std::optional<double>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

// Reads fields of one JSON object, naming the path in every error.
struct fields {
  const json::object& o;
  std::string path;
  const json::value& at(const char* k) const {
    auto it = o.find(k);
    if (it == o.end()) throw std::invalid_argument(path + "." + k + ": missing");
    return it->value();
  }
  double number(const char* k) const {
    const json::value& v = at(k);
    if (v.is_double()) return v.get_double();
    if (v.is_int64()) return static_cast<double>(v.get_int64());
    if (v.is_uint64()) return static_cast<double>(v.get_uint64());
    throw std::invalid_argument(path + "." + k + ": not a number");
  }
  double number_or(const char* k, double fallback) const {
    return o.find(k) == o.end() ? fallback : number(k);
  }
  // Absent or null: not measured.
  std::optional<double> optional_non_negative(const char* k) const {
    auto it = o.find(k);
    if (it == o.end() || it->value().is_null()) return std::nullopt;
    const double d = number(k);
    if (!(d >= 0)) throw std::invalid_argument(path + "." + k + ": must be >= 0");
    return d;
  }
  // A whole number that fits an int: casting a larger or fractional double is undefined behaviour.
  int integer(const char* k, int low) const {
    const double d = number(k);
    if (d != std::floor(d) || d < low || d > std::numeric_limits<int>::max())
      throw std::invalid_argument(path + "." + k + ": not an integer from " + std::to_string(low) +
                                  " to " + std::to_string(std::numeric_limits<int>::max()));
    return static_cast<int>(d);
  }
  int integer_or(const char* k, int low, int fallback) const {
    return o.find(k) == o.end() ? fallback : integer(k, low);
  }
  std::string string(const char* k) const {
    const json::value& v = at(k);
    if (!v.is_string()) throw std::invalid_argument(path + "." + k + ": not a string");
    return std::string(v.get_string());
  }
  bool boolean(const char* k) const {
    const json::value& v = at(k);
    if (!v.is_bool()) throw std::invalid_argument(path + "." + k + ": not true or false");
    return v.get_bool();
  }
  const json::object* object(const char* k) const {  // null or absent: nullptr
    auto it = o.find(k);
    if (it == o.end() || it->value().is_null()) return nullptr;
    if (!it->value().is_object()) throw std::invalid_argument(path + "." + k + ": not an object");
    return &it->value().get_object();
  }
};

const json::object& as_object(const json::value& v, const std::string& path) {
  if (!v.is_object()) throw std::invalid_argument(path + ": not an object");
  return v.get_object();
}

}  // namespace

std::string pool_setting::text() const {
  std::ostringstream os;
  os << "max_open " << max_open << ", max_idle " << max_idle << ", Go " << go_version;
  return os.str();
}

json::object to_json(const calibration_step& s) {
  json::object o;
  o["index"] = s.index;
  o["label"] = s.label;
  o["source"] = s.source;
  o["rate"] = s.rate;
  o["repeat"] = s.repeat;
  o["started_at"] = s.started_at;
  o["window"] = s.window;
  o["stopped_early"] = s.stopped_early;
  o["stop_reason"] = s.stop_reason;
  if (s.pool) {
    o["pool"] = {{"max_open", s.pool->max_open},
                 {"max_idle", s.pool->max_idle},
                 {"go_version", s.pool->go_version},
                 {"waiter_order", s.pool->waiter_order}};
  } else {
    o["pool"] = nullptr;
  }
  if (s.service) {
    const service_counters& c = *s.service;
    o["service"] = {{"requests", c.requests},
                    {"dials", c.dials},
                    {"dial_failures", c.dial_failures},
                    {"closes", c.closes},
                    {"closed_max_idle", c.closed_max_idle},
                    {"waits", c.waits},
                    {"wait_seconds", c.wait_seconds},
                    {"wait_timeouts", c.wait_timeouts},
                    {"cpu_seconds", c.cpu_seconds}};
  } else {
    o["service"] = nullptr;
  }
  if (s.cpu) {
    const local_cpu& c = *s.cpu;
    o["cpu"] = {{"service", c.service},
                {"database", c.database},
                {"postmaster", c.postmaster},
                {"connections_cpu", c.connections_cpu},
                {"connections_ended", c.connections_ended},
                {"host_busy", c.host_busy},
                {"runnable", c.runnable},
                {"cores", c.cores},
                {"cpu_pressure", optional_number(c.cpu_pressure)},
                {"waiting", optional_number(c.waiting)},
                {"postmaster_wait", optional_number(c.postmaster_wait)},
                {"target_cpus", c.target_cpus}};
  } else {
    o["cpu"] = nullptr;
  }
  o["load"] = to_json(s.load);
  return o;
}

calibration_step calibration_step_from_json(const json::value& v) {
  const json::object& o = as_object(v, "step");
  calibration_step s;
  fields f{o, "step"};
  s.index = static_cast<std::size_t>(f.integer("index", 0));
  f.path = "steps[" + std::to_string(s.index) + "]";
  s.label = f.string("label");
  // Added with passive calibration: a file without it was measured by the generator.
  if (o.contains("source")) s.source = f.string("source");
  s.rate = f.number("rate");
  s.repeat = f.integer("repeat", 0);
  s.started_at = f.string("started_at");
  s.window = f.number("window");
  s.stopped_early = f.boolean("stopped_early");
  s.stop_reason = f.string("stop_reason");
  if (const json::object* p = f.object("pool")) {
    fields pf{*p, f.path + ".pool"};
    // A negative max_idle is Go's "keep none", as the service takes it.
    s.pool = pool_setting{pf.integer("max_open", 0),
                          pf.integer("max_idle", std::numeric_limits<int>::min()),
                          pf.string("go_version"), pf.string("waiter_order")};
  }
  if (const json::object* p = f.object("service")) {
    fields sf{*p, f.path + ".service"};
    service_counters c;
    c.requests = sf.number("requests");
    c.dials = sf.number("dials");
    c.dial_failures = sf.number("dial_failures");
    c.closes = sf.number("closes");
    c.closed_max_idle = sf.number("closed_max_idle");
    c.waits = sf.number("waits");
    c.wait_seconds = sf.number("wait_seconds");
    c.wait_timeouts = sf.number("wait_timeouts");
    c.cpu_seconds = sf.number("cpu_seconds");
    s.service = c;
  }
  if (const json::object* p = f.object("cpu")) {
    fields cf{*p, f.path + ".cpu"};
    local_cpu c;
    c.service = cf.number("service");
    c.database = cf.number("database");
    c.postmaster = cf.number("postmaster");
    // Added after the first calibration files: absent means not measured.
    c.connections_cpu = cf.number_or("connections_cpu", 0);
    c.connections_ended = cf.integer_or("connections_ended", 0, 0);
    c.host_busy = cf.number("host_busy");
    c.runnable = cf.number("runnable");
    c.cores = cf.integer("cores", 0);
    // Added later still, and null where the kernel did not say: absent or null = not measured.
    c.cpu_pressure = cf.optional_non_negative("cpu_pressure");
    c.waiting = cf.optional_non_negative("waiting");
    c.postmaster_wait = cf.optional_non_negative("postmaster_wait");
    if (p->contains("target_cpus")) c.target_cpus = cf.string("target_cpus");
    s.cpu = c;
  }
  try {
    s.load = from_json(f.at("load"));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(f.path + ".load: " + e.what());
  }
  return s;
}

}  // namespace headroom::calibrate
