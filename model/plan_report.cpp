// plan_report.hpp: the plan as JSON, text and Markdown.
#include "plan_report.hpp"

#include <boost/json.hpp>
#include <cmath>
#include <sstream>

#include "duration.hpp"

namespace headroom {

namespace json = boost::json;

namespace {

json::value number(double x) { return std::isfinite(x) ? json::value(x) : json::value(nullptr); }
json::value maybe(const std::optional<double>& x) { return x ? number(*x) : json::value(nullptr); }

std::optional<double> utilization(const prediction& p, const std::string& name) {
  for (const auto& [k, v] : p.utilization)
    if (k == name) return v.value;
  return std::nullopt;
}

json::value capacity_json(const capacity_estimate& c) {
  if (!c.found) return nullptr;
  return json::object{{"rps", c.rps},
                      {"low", c.low_known ? json::value(c.low) : nullptr},
                      {"high", c.high},
                      {"note", c.note.empty() ? json::value(nullptr) : json::value(c.note)}};
}

json::value evaluations_json(const capacity_estimate& c) {
  json::array a;
  for (const auto& e : c.evaluations) {
    json::object o{{"rate", e.rate},
                   {"runs", e.runs},
                   {"met", e.met},
                   {"p_slo", e.p()},
                   {"refused", e.refused}};
    if (e.refused) {
      o["reason"] = e.reason;
    } else {
      o["median"] = number(e.live.median);
      o["low"] = number(e.live.low);
      o["high"] = number(e.live.high);
      o["p_stable"] = e.live.p_stable;
    }
    a.push_back(std::move(o));
  }
  return a;
}

std::string ms(double seconds) {
  if (!std::isfinite(seconds)) return "fell over";
  std::ostringstream os;
  os.precision(3);
  os << seconds * 1000 << " ms";
  return os.str();
}

}  // namespace

json::value plan_to_json(const plan& p) {
  const plan_request& r = p.request;
  json::object o;
  o["format"] = "headroom-plan/1";
  o["scenario"] = p.scenario_name;
  o["target_rps"] = r.target_rps;
  o["slo"] = json::object{{"quantile", r.slo.quantile},
                          {"latency", r.slo.latency},
                          {"text", r.slo.name() + "=" + format_duration(r.slo.latency)}};
  o["confidence"] = r.confidence;
  o["redundancy"] = r.redundancy;
  o["zones"] = r.zones;
  o["survive_zone_loss"] = r.survive_zone_loss;
  o["window"] = r.window;
  o["window_warmup"] = r.window_warmup;
  o["runs"] = r.runs;
  o["precision"] = r.precision;
  o["split"] = p.split;
  o["feasible"] = p.feasible;
  o["reason"] = p.reason.empty() ? json::value(nullptr) : json::value(p.reason);
  o["pool"] = p.use_pool ? json::value(json::object{{"max_open", p.chosen.pool.max_open},
                                                    {"max_idle", p.chosen.pool.max_idle}})
                         : json::value(nullptr);
  o["capacity"] = capacity_json(p.chosen.capacity);
  const auto& count = p.chosen.count;
  o["instances"] = count ? json::value(count->instances) : json::value(nullptr);
  o["instances_needed"] = count ? json::value(count->needed) : json::value(nullptr);
  o["per_zone"] = count ? json::value(count->per_zone) : json::value(nullptr);
  if (p.at_target) {
    const prediction& t = *p.at_target;
    const bool live = t.stable && t.live.computed;
    // "p99" is the SLO's percentile of one window (p99 for a p99 SLO), with its 90 % range.
    json::object at{{"rps_per_instance", p.rps_per_instance},
                    {"stable", t.stable},
                    {"percentile", r.slo.name()},
                    {"p99", live ? number(t.live.median) : nullptr},
                    {"p99_low", live ? number(t.live.low) : nullptr},
                    {"p99_high", live ? number(t.live.high) : nullptr},
                    {"p_slo", live ? json::value(t.live.p_slo) : nullptr}};
    // Co-located, an instance's cores are shared with the database: its CPU is all of theirs.
    auto service_cpu = utilization(t, "service_cpu");
    at["service_cpu"] = maybe(service_cpu ? service_cpu : utilization(t, "cpu"));
    auto database_cpu = utilization(t, "database_cpu");
    at["database_cpu"] = maybe(database_cpu ? database_cpu : utilization(t, "cpu_database"));
    at["dials_per_s"] = t.has_pool ? number(t.pool.dials_per_s.value) : nullptr;
    o["at_target"] = std::move(at);
  } else {
    o["at_target"] = nullptr;
  }
  const auto& db = p.database;
  o["database"] = json::object{{"cores", maybe(db.cores)},
                               {"cpu_at_target", maybe(db.cpu_at_target)},
                               {"connections_peak", maybe(db.connections_peak)},
                               {"max_connections", db.max_connections},
                               {"dials_per_s", maybe(db.dials_per_s)},
                               {"refused_dials_per_s", maybe(db.refused_dials_per_s)},
                               {"bottleneck", db.bottleneck},
                               {"cores_needed", maybe(db.cores_needed)}};
  if (p.recommendation && p.recommendation->count) {
    const setting_plan& b = *p.recommendation;
    o["recommendation"] = json::object{{"max_open", b.pool.max_open},
                                       {"max_idle", b.pool.max_idle},
                                       {"capacity", capacity_json(b.capacity)},
                                       {"instances", b.count->instances}};
  } else {
    o["recommendation"] = nullptr;
  }
  json::array spread;
  for (const plan::speed_case& c : p.speed_spread)
    spread.push_back(
        json::object{{"name", c.name},
                     {"speed_factor", c.factor},
                     {"capacity", capacity_json(c.capacity)},
                     {"instances", c.count ? json::value(c.count->instances) : nullptr}});
  o["speed_spread"] = std::move(spread);
  o["evaluations"] = evaluations_json(p.chosen.capacity);
  json::array summary;
  for (const auto& line : p.summary) summary.push_back(json::value(line));
  o["summary"] = std::move(summary);
  o["wall_seconds"] = p.wall_seconds;
  return o;
}

std::string plan_text(const plan& p) {
  std::string out;
  for (const auto& line : p.summary) out += line + "\n";
  return out;
}

std::string plan_markdown(const plan& p) {
  const plan_request& r = p.request;
  std::ostringstream os;
  os << "| | |\n| --- | --- |\n";
  os << "| target | " << r.target_rps << " req/s |\n";
  os << "| SLO | " << r.slo.text() << " in " << r.confidence * 100 << " % of "
     << format_duration(r.window) << " windows |\n";
  if (p.use_pool)
    os << "| pool | max_open " << p.chosen.pool.max_open << ", max_idle " << p.chosen.pool.max_idle
       << " |\n";
  const auto& c = p.chosen.capacity;
  if (c.found)
    os << "| capacity per instance | " << std::lround(c.rps) << " req/s ("
       << (c.low_known ? std::to_string(std::lround(c.low)) : std::string("unknown")) << " .. "
       << std::lround(c.high) << ") |\n";
  if (p.chosen.count)
    os << "| instances | " << p.chosen.count->instances << " (" << p.chosen.count->needed
       << " needed + " << r.redundancy << " spare" << (r.zones > 1 ? ", zone rounding" : "")
       << ") |\n";
  if (p.at_target && p.at_target->stable) {
    const prediction& t = *p.at_target;
    os << "| at " << std::lround(p.rps_per_instance) << " req/s per instance | " << r.slo.name()
       << " " << ms(t.live.median) << " (" << ms(t.live.low) << " .. " << ms(t.live.high) << ")";
    if (auto cpu = utilization(t, "service_cpu"))
      os << ", service CPU " << std::lround(*cpu * 100) << " %";
    else if (auto shared = utilization(t, "cpu"))
      os << ", CPU " << std::lround(*shared * 100) << " %";
    if (t.has_pool) os << ", " << t.pool.dials_per_s.value << " dials/s";
    os << " |\n";
  }
  const auto& db = p.database;
  if (p.at_target) {
    os << "| database |";
    if (db.cpu_at_target)
      os << " CPU " << std::lround(*db.cpu_at_target * 100) << " %"
         << (db.cores ? " of " + std::to_string(std::lround(*db.cores)) + " cores" : "") << ",";
    if (db.connections_peak)
      os << " connections " << std::lround(*db.connections_peak) << " of " << db.max_connections
         << ",";
    if (db.dials_per_s) os << " " << *db.dials_per_s << " dials/s,";
    if (db.cores_needed) os << " needs " << std::lround(*db.cores_needed) << " cores,";
    os << (db.bottleneck ? " saturates first" : " keeps up") << " |\n";
  }
  if (p.recommendation && p.recommendation->count)
    os << "| best pool setting | max_open " << p.recommendation->pool.max_open << ", max_idle "
       << p.recommendation->pool.max_idle << ": " << std::lround(p.recommendation->capacity.rps)
       << " req/s, " << p.recommendation->count->instances << " instances |\n";
  os << "| feasible | " << (p.feasible ? "yes" : "no: " + p.reason) << " |\n\n";
  for (const auto& line : p.summary) os << "    " << line << "\n";
  return os.str();
}

}  // namespace headroom
