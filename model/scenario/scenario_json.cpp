// Scenario and calibration files (SCENARIO.md) to scenario structs and back.
#include "scenario_json.hpp"

#include <boost/json.hpp>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace headroom {

namespace json = boost::json;

namespace {

[[noreturn]] void fail(const std::string& field, const std::string& what) {
  throw scenario_error(field + ": " + what);
}

std::string join(const std::string& base, const std::string& key) {
  return base.empty() ? key : base + "." + key;
}

// An object whose keys are checked: a typo is an error naming it, not a silent default.
class reader {
 public:
  reader(const json::value& v, std::string field) : field_(std::move(field)) {
    if (!v.is_object()) fail(field_.empty() ? "scenario" : field_, "must be a JSON object");
    obj_ = &v.as_object();
  }
  ~reader() = default;
  const json::value* get(const std::string& key) {
    seen_.insert(key);
    auto it = obj_->find(key);
    if (it == obj_->end() || it->value().is_null()) return nullptr;
    return &it->value();
  }
  bool has(const std::string& key) const { return obj_->contains(key); }
  double number(const std::string& key, double fallback) {
    const json::value* v = get(key);
    if (!v) return fallback;
    return as_number(*v, join(field_, key));
  }
  double required_number(const std::string& key) {
    const json::value* v = get(key);
    if (!v) fail(join(field_, key), "missing");
    return as_number(*v, join(field_, key));
  }
  std::int64_t integer(const std::string& key, std::int64_t fallback) {
    const json::value* v = get(key);
    if (!v) return fallback;
    double d = as_number(*v, join(field_, key));
    if (d != std::floor(d)) fail(join(field_, key), "must be an integer");
    // Beyond 2^53 a double no longer holds every integer: refuse rather than round.
    if (std::fabs(d) > 9e15) fail(join(field_, key), "out of range (" + json::serialize(*v) + ")");
    return static_cast<std::int64_t>(d);
  }
  // A count held in an int (connections, workers, replications): a larger value is an error,
  // never silently wrapped (4294967297 connections would have read as 1).
  int count(const std::string& key, int fallback) {
    std::int64_t x = integer(key, fallback);
    if (x < std::numeric_limits<int>::min() || x > std::numeric_limits<int>::max())
      fail(join(field_, key), "out of range (" + std::to_string(x) + ")");
    return static_cast<int>(x);
  }
  std::string string(const std::string& key, const std::string& fallback) {
    const json::value* v = get(key);
    if (!v) return fallback;
    if (!v->is_string()) fail(join(field_, key), "must be a string");
    return std::string(v->as_string());
  }
  bool boolean(const std::string& key, bool fallback) {
    const json::value* v = get(key);
    if (!v) return fallback;
    if (!v->is_bool()) fail(join(field_, key), "must be true or false");
    return v->as_bool();
  }
  distribution dist(const std::string& key) {
    const json::value* v = get(key);
    if (!v) return distribution::none();
    return distribution_from_json(*v, join(field_, key));
  }
  std::string field(const std::string& key) const { return join(field_, key); }
  // Call last: every key must have been asked for.
  void no_unknown_keys() const {
    for (const auto& kv : *obj_) {
      std::string k(kv.key());
      if (!seen_.count(k)) fail(join(field_, k), "unknown field");
    }
  }
  static double as_number(const json::value& v, const std::string& field) {
    if (v.is_double()) return v.as_double();
    if (v.is_int64()) return static_cast<double>(v.as_int64());
    if (v.is_uint64()) return static_cast<double>(v.as_uint64());
    fail(field, "must be a number");
  }

 private:
  std::string field_;
  const json::object* obj_;
  std::set<std::string> seen_;
};

std::vector<double> number_array(const json::value& v, const std::string& field) {
  if (!v.is_array()) fail(field, "must be an array of numbers");
  std::vector<double> out;
  for (const auto& x : v.as_array()) out.push_back(reader::as_number(x, field));
  return out;
}

// Distribution factories throw std::invalid_argument without a field: add it.
template <class F>
distribution with_field(const std::string& field, F make) {
  try {
    return make();
  } catch (const scenario_error&) {
    throw;
  } catch (const std::invalid_argument& e) {
    fail(field, e.what());
  }
}

}  // namespace

distribution distribution_from_json(const json::value& v, const std::string& field) {
  // A bare number is a constant time: the common case for a delay.
  if (v.is_number()) {
    double x = reader::as_number(v, field);
    return with_field(field, [&] { return distribution::deterministic(x); });
  }
  reader r(v, field);
  std::string type = r.string("type", "");
  if (type.empty())
    fail(r.field("type"),
         "missing (exponential, deterministic, uniform, lognormal, gamma, empirical, histogram, "
         "mixture, none)");
  double shift = r.number("shift", 0);
  if (!std::isfinite(shift) || shift < 0) fail(r.field("shift"), "must be >= 0");
  distribution d;
  if (type == "none") {
    d = distribution::none();
  } else if (type == "exponential") {
    double m = r.required_number("mean");
    d = with_field(r.field("mean"), [&] { return distribution::exponential(m); });
  } else if (type == "deterministic" || type == "constant") {  // "constant": the same thing
    double x = r.required_number("value");
    d = with_field(r.field("value"), [&] { return distribution::deterministic(x); });
  } else if (type == "uniform") {
    double lo = r.required_number("low"), hi = r.required_number("high");
    d = with_field(field, [&] { return distribution::uniform(lo, hi); });
  } else if (type == "lognormal" || type == "gamma") {
    bool natural =
        type == "lognormal" ? (r.has("mu") || r.has("sigma")) : (r.has("shape") || r.has("scale"));
    if (natural) {
      double a = r.required_number(type == "lognormal" ? "mu" : "shape");
      double b = r.required_number(type == "lognormal" ? "sigma" : "scale");
      d = with_field(field, [&] {
        return type == "lognormal" ? distribution::lognormal(a, b) : distribution::gamma(a, b);
      });
    } else {
      double m = r.required_number("mean"), cv = r.required_number("cv");
      d = with_field(field, [&] {
        return type == "lognormal" ? distribution::lognormal_mean_cv(m, cv)
                                   : distribution::gamma_mean_cv(m, cv);
      });
    }
  } else if (type == "empirical") {
    // Either [[p, x], ...] pairs or parallel arrays: what a calibration fit writes.
    std::vector<double> p, x;
    if (const json::value* q = r.get("quantiles")) {
      if (!q->is_array())
        fail(r.field("quantiles"), "must be an array of [probability, seconds] pairs");
      for (const auto& pair : q->as_array()) {
        auto pv = number_array(pair, r.field("quantiles"));
        if (pv.size() != 2) fail(r.field("quantiles"), "each entry must be [probability, seconds]");
        p.push_back(pv[0]);
        x.push_back(pv[1]);
      }
    } else {
      const json::value* pp = r.get("probs");
      const json::value* vv = r.get("values");
      if (!pp || !vv) fail(r.field("quantiles"), "missing (or give probs and values)");
      p = number_array(*pp, r.field("probs"));
      x = number_array(*vv, r.field("values"));
    }
    d = with_field(field, [&] { return distribution::quantile_table(p, x); });
  } else if (type == "histogram") {
    const json::value* e = r.get("edges");
    const json::value* c = r.get("counts");
    if (!e) fail(r.field("edges"), "missing");
    if (!c) fail(r.field("counts"), "missing");
    auto edges = number_array(*e, r.field("edges"));
    auto counts = number_array(*c, r.field("counts"));
    d = with_field(field, [&] { return distribution::histogram(edges, counts); });
  } else if (type == "mixture") {
    const json::value* comps = r.get("components");
    if (!comps || !comps->is_array() || comps->as_array().empty())
      fail(r.field("components"), "missing (an array of {weight, distribution})");
    std::vector<double> w;
    std::vector<distribution> parts;
    std::size_t i = 0;
    for (const auto& c : comps->as_array()) {
      std::string cf = r.field("components") + "[" + std::to_string(i++) + "]";
      reader cr(c, cf);
      w.push_back(cr.required_number("weight"));
      const json::value* dv = cr.get("distribution");
      if (!dv) fail(cr.field("distribution"), "missing");
      parts.push_back(distribution_from_json(*dv, cr.field("distribution")));
      cr.no_unknown_keys();
    }
    d = with_field(r.field("components"), [&] { return distribution::mixture(w, parts); });
  } else {
    fail(r.field("type"),
         "unknown distribution '" + type +
             "' (exponential, deterministic, uniform, lognormal, gamma, empirical, histogram, "
             "mixture, none)");
  }
  r.no_unknown_keys();
  return d.shifted(shift);
}

scenario scenario_from_json(const json::value& v) {
  scenario s;
  reader top(v, "");
  std::string schema = top.string("schema", "headroom.scenario/1");
  if (schema != "headroom.scenario/1" && schema != "headroom.calibration/1")
    fail("schema", "unsupported '" + schema + "' (headroom.scenario/1 or headroom.calibration/1)");
  top.get("calibration");  // provenance written by `headroom calibrate`: not model input
  top.get("description");
  s.name = top.string("name", "");

  if (const json::value* a = top.get("arrivals")) {
    reader r(*a, "arrivals");
    std::string process = r.string("process", "poisson");
    if (process == "poisson") {
      s.arrivals.process = arrival_process::poisson;
    } else if (process == "constant") {
      s.arrivals.process = arrival_process::constant;
    } else if (process == "trace") {
      s.arrivals.process = arrival_process::trace;
    } else {
      fail("arrivals.process", "unknown process '" + process + "' (poisson, constant, trace)");
    }
    if (s.arrivals.process == arrival_process::trace) {
      const json::value* t = r.get("times");
      if (!t) fail("arrivals.times", "missing (a trace needs arrival times in seconds)");
      s.arrivals.times = number_array(*t, "arrivals.times");
    } else {
      s.arrivals.rate = r.required_number("rate");
    }
    r.no_unknown_keys();
  }

  if (const json::value* c = top.get("cpu")) {
    reader r(*c, "cpu");
    s.cores = r.number("cores", s.cores);
    if (const json::value* b = r.get("background")) {
      reader br(*b, "cpu.background");
      s.background_utilization = br.number("utilization", 0);
      if (br.has("job_cpu")) s.background_job = br.dist("job_cpu");
      br.no_unknown_keys();
    }
    if (const json::value* pr = r.get("per_runnable")) {
      reader rr(*pr, "cpu.per_runnable");
      s.service_cpu_per_runnable = rr.number("service", 0);
      s.database_cpu_per_runnable = rr.number("database", 0);
      if (const json::value* m = rr.get("max_runnable")) {
        reader mr(*m, "cpu.per_runnable.max_runnable");
        s.service_max_runnable = mr.number("service", 0);
        s.database_max_runnable = mr.number("database", 0);
        mr.no_unknown_keys();
      }
      rr.no_unknown_keys();
    }
    r.no_unknown_keys();
  }
  if (const json::value* v = top.get("stalls")) {
    reader r(*v, "stalls");
    s.stall_rate = r.number("rate", 0);
    s.stall_per_request = r.number("per_request", 0);
    if (r.has("length")) s.stall_length = r.dist("length");
    r.no_unknown_keys();
  }
  if (const json::value* v = top.get("wakeup")) {
    reader r(*v, "wakeup");
    // 0 (a constant of no time) is none, as the files before the wake-up's spread wrote it.
    if (r.has("delay"))
      if (distribution d = r.dist("delay"); d.mean() != 0) s.wakeup_delay = std::move(d);
    s.wakeup_idle = r.number("idle", 0);
    r.no_unknown_keys();
  }
  if (const json::value* v = top.get("variability")) {
    reader r(*v, "variability");
    s.speed_sigma = r.number("speed_sigma", 0);
    s.delay_sigma = r.number("delay_sigma", 0);
    s.speed_sigma_dof = r.count("speed_sigma_dof", 0);
    s.delay_sigma_dof = r.count("delay_sigma_dof", 0);
    s.speed_factor = r.number("speed_factor", 1);
    r.no_unknown_keys();
  }
  if (const json::value* c = top.get("client")) {
    reader r(*c, "client");
    s.client_connections = r.count("max_connections", 0);
    r.no_unknown_keys();
  }
  s.workers = top.count("workers", s.workers);

  if (const json::value* p = top.get("pool")) {
    reader r(*p, "pool");
    s.use_pool = r.boolean("enabled", true);
    s.pool.max_open = r.count("max_open", s.pool.max_open);
    s.pool.max_idle = r.count("max_idle", s.pool.max_idle);
    s.pool.max_lifetime = r.number("max_lifetime", 0);
    s.pool.max_idle_time = r.number("max_idle_time", 0);
    try {
      s.pool.go = parse_go_version(r.string("go_version", to_string(s.pool.go)));
    } catch (const std::invalid_argument& e) {
      fail("pool.go_version", e.what());
    }
    // Absent: the Go version's rule. Present: an override (a pool that is not Go's).
    if (r.get("waiter_order")) {
      try {
        s.pool.order = parse_waiter_order(r.string("waiter_order", ""));
      } catch (const std::invalid_argument& e) {
        fail("pool.waiter_order", e.what());
      }
    }
    s.wait_timeout = r.number("wait_timeout", s.wait_timeout);
    s.pool_warm_start = r.boolean("warm_start", true);
    r.no_unknown_keys();
  }

  if (const json::value* n = top.get("network")) {
    reader r(*n, "network");
    s.network_rtt = r.dist("rtt");
    r.no_unknown_keys();
  }

  if (const json::value* ph = top.get("phases")) {
    reader r(*ph, "phases");
    if (const json::value* x = r.get("parse")) {
      reader p(*x, "phases.parse");
      s.parse_cpu = p.dist("cpu");
      p.no_unknown_keys();
    }
    if (const json::value* x = r.get("dial")) {
      reader p(*x, "phases.dial");
      s.dial_fork = p.dist("fork");
      s.dial_cpu = p.dist("cpu");
      s.dial_delay = p.dist("delay");
      p.no_unknown_keys();
    }
    if (const json::value* x = r.get("query")) {
      reader p(*x, "phases.query");
      s.query_delay = p.dist("delay");
      s.query_db_cpu = p.dist("db_cpu");
      s.query_service_cpu = p.dist("service_cpu");
      s.query_cold_db_cpu = p.dist("cold_db_cpu");
      p.no_unknown_keys();
    }
    if (const json::value* x = r.get("release")) {
      reader p(*x, "phases.release");
      s.release_delay = p.dist("delay");
      s.release_cpu = p.dist("cpu");
      p.no_unknown_keys();
    }
    if (const json::value* x = r.get("respond")) {
      reader p(*x, "phases.respond");
      s.respond_cpu = p.dist("cpu");
      p.no_unknown_keys();
    }
    if (const json::value* x = r.get("close")) {
      reader p(*x, "phases.close");
      s.close_db_cpu = p.dist("db_cpu");
      p.no_unknown_keys();
    }
    r.no_unknown_keys();
  }

  if (const json::value* d = top.get("deployment")) {
    reader r(*d, "deployment");
    deployment_spec& dep = s.deployment;
    dep.instances = r.count("instances", dep.instances);
    dep.service_cores = r.number("service_cores", dep.service_cores);
    dep.database_cores = r.number("database_cores", dep.database_cores);
    dep.database_rtt = r.dist("database_rtt");
    dep.database_max_connections =
        r.count("database_max_connections", dep.database_max_connections);
    dep.broken_connection_share =
        r.number("broken_connection_share", dep.broken_connection_share);
    r.no_unknown_keys();
  }

  if (const json::value* g = top.get("generator")) {
    reader r(*g, "generator");
    s.generator_cpu = r.dist("cpu");
    r.no_unknown_keys();
  }

  if (const json::value* run = top.get("run")) {
    reader r(*run, "run");
    auto nonneg = [&](const char* key, std::int64_t fallback) {
      std::int64_t x = r.integer(key, fallback);
      if (x < 0) fail(r.field(key), "must be >= 0");
      return static_cast<std::uint64_t>(x);
    };
    s.run.requests = nonneg("requests", static_cast<std::int64_t>(s.run.requests));
    s.run.warmup_requests = nonneg("warmup_requests", 0);
    s.run.seed = nonneg("seed", static_cast<std::int64_t>(s.run.seed));
    s.run.min_replications = r.count("min_replications", s.run.min_replications);
    s.run.max_replications = r.count("max_replications", s.run.max_replications);
    s.run.target_half_width = r.number("target_half_width", s.run.target_half_width);
    s.run.confidence = r.number("confidence", s.run.confidence);
    s.run.threads = r.count("threads", 0);
    s.run.max_in_flight = nonneg("max_in_flight", static_cast<std::int64_t>(s.run.max_in_flight));
    s.run.live_length = r.number("live_length", 0);
    s.run.live_warmup = r.number("live_warmup", 0);
    if (const json::value* slo = r.get("slo")) {
      reader sr(*slo, "run.slo");
      s.run.slo_quantile = sr.number("quantile", s.run.slo_quantile);
      s.run.slo_latency = sr.number("latency", 0);
      sr.no_unknown_keys();
    }
    r.no_unknown_keys();
  }
  top.no_unknown_keys();
  return s;
}

scenario load_scenario_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw scenario_error(path + ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  json::value v = json::parse(text.str(), ec);
  if (ec) throw scenario_error(path + ": not valid JSON (" + ec.message() + ")");
  return scenario_from_json(v);
}

json::value distribution_to_json(const distribution& d) {
  json::object o;
  switch (d.kind) {
    case distribution_kind::zero:
      o["type"] = "none";
      break;
    case distribution_kind::exponential:
      o["type"] = "exponential";
      o["mean"] = d.p1;
      break;
    case distribution_kind::deterministic:
      o["type"] = "deterministic";
      o["value"] = d.p1;
      break;
    case distribution_kind::uniform:
      o["type"] = "uniform";
      o["low"] = d.p1;
      o["high"] = d.p2;
      break;
    case distribution_kind::lognormal:
      o["type"] = "lognormal";
      o["mu"] = d.p1;
      o["sigma"] = d.p2;
      break;
    case distribution_kind::gamma:
      o["type"] = "gamma";
      o["shape"] = d.p1;
      o["scale"] = d.p2;
      break;
    case distribution_kind::empirical: {
      o["type"] = "empirical";
      json::array q;
      for (std::size_t i = 0; i < d.probs.size(); ++i)
        q.push_back(json::array{d.probs[i], d.values[i]});
      o["quantiles"] = std::move(q);
      break;
    }
    case distribution_kind::mixture: {
      o["type"] = "mixture";
      json::array c;
      double prev = 0;
      for (std::size_t i = 0; i < d.components.size(); ++i) {
        c.push_back(json::object{{"weight", d.cumulative_weights[i] - prev},
                                 {"distribution", distribution_to_json(d.components[i])}});
        prev = d.cumulative_weights[i];
      }
      o["components"] = std::move(c);
      break;
    }
  }
  if (d.shift != 0) o["shift"] = d.shift;
  return o;
}

json::value scenario_to_json(const scenario& s) {
  json::object o;
  o["schema"] = "headroom.scenario/1";
  if (!s.name.empty()) o["name"] = s.name;
  json::object a;
  switch (s.arrivals.process) {
    case arrival_process::poisson:
      a["process"] = "poisson";
      a["rate"] = s.arrivals.rate;
      break;
    case arrival_process::constant:
      a["process"] = "constant";
      a["rate"] = s.arrivals.rate;
      break;
    case arrival_process::trace: {
      a["process"] = "trace";
      json::array t;
      for (double x : s.arrivals.times) t.push_back(x);
      a["times"] = std::move(t);
      break;
    }
  }
  o["arrivals"] = std::move(a);
  o["cpu"] = json::object{
      {"cores", s.cores},
      {"background", json::object{{"utilization", s.background_utilization},
                                  {"job_cpu", distribution_to_json(s.background_job)}}},
      {"per_runnable",
       json::object{{"service", s.service_cpu_per_runnable},
                    {"database", s.database_cpu_per_runnable},
                    {"max_runnable", json::object{{"service", s.service_max_runnable},
                                                  {"database", s.database_max_runnable}}}}}};
  o["stalls"] = json::object{{"rate", s.stall_rate},
                             {"per_request", s.stall_per_request},
                             {"length", distribution_to_json(s.stall_length)}};
  o["wakeup"] =
      json::object{{"delay", distribution_to_json(s.wakeup_delay)}, {"idle", s.wakeup_idle}};
  o["variability"] = json::object{{"speed_sigma", s.speed_sigma},
                                  {"speed_sigma_dof", s.speed_sigma_dof},
                                  {"delay_sigma", s.delay_sigma},
                                  {"delay_sigma_dof", s.delay_sigma_dof}};
  if (s.speed_factor != 1) o["variability"].as_object()["speed_factor"] = s.speed_factor;
  o["client"] = json::object{{"max_connections", s.client_connections}};
  o["workers"] = s.workers;
  json::object pool{{"enabled", s.use_pool},
                    {"max_open", s.pool.max_open},
                    {"max_idle", s.pool.max_idle},
                    {"max_lifetime", s.pool.max_lifetime},
                    {"max_idle_time", s.pool.max_idle_time},
                    {"go_version", to_string(s.pool.go)},
                    {"wait_timeout", s.wait_timeout},
                    {"warm_start", s.pool_warm_start}};
  if (s.pool.order) pool["waiter_order"] = to_string(*s.pool.order);  // only an override
  o["pool"] = std::move(pool);
  o["network"] = json::object{{"rtt", distribution_to_json(s.network_rtt)}};
  auto d = distribution_to_json;
  o["phases"] = json::object{
      {"parse", json::object{{"cpu", d(s.parse_cpu)}}},
      {"dial",
       json::object{{"fork", d(s.dial_fork)}, {"cpu", d(s.dial_cpu)}, {"delay", d(s.dial_delay)}}},
      {"query", json::object{{"delay", d(s.query_delay)},
                             {"db_cpu", d(s.query_db_cpu)},
                             {"service_cpu", d(s.query_service_cpu)},
                             {"cold_db_cpu", d(s.query_cold_db_cpu)}}},
      {"release", json::object{{"delay", d(s.release_delay)}, {"cpu", d(s.release_cpu)}}},
      {"respond", json::object{{"cpu", d(s.respond_cpu)}}},
      {"close", json::object{{"db_cpu", d(s.close_db_cpu)}}}};
  o["generator"] = json::object{{"cpu", d(s.generator_cpu)}};
  json::object deployment{{"instances", s.deployment.instances},
                          {"service_cores", s.deployment.service_cores},
                          {"database_cores", s.deployment.database_cores},
                          {"database_rtt", d(s.deployment.database_rtt)},
                          {"database_max_connections", s.deployment.database_max_connections}};
  if (s.deployment.broken_connection_share > 0)  // written when set: files without it unchanged
    deployment["broken_connection_share"] = s.deployment.broken_connection_share;
  o["deployment"] = std::move(deployment);
  o["run"] = json::object{
      {"requests", s.run.requests},
      {"warmup_requests", s.run.warmup_requests},
      {"seed", s.run.seed},
      {"min_replications", s.run.min_replications},
      {"max_replications", s.run.max_replications},
      {"target_half_width", s.run.target_half_width},
      {"confidence", s.run.confidence},
      {"threads", s.run.threads},
      {"max_in_flight", s.run.max_in_flight},
      {"live_length", s.run.live_length},
      {"live_warmup", s.run.live_warmup},
      {"slo", json::object{{"quantile", s.run.slo_quantile}, {"latency", s.run.slo_latency}}}};
  return o;
}

}  // namespace headroom
