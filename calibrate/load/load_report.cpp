// Reports of a load run: text for people, JSON for tools and for merging, HDR and CSV for plots.
#include "load_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

namespace headroom::calibrate {
namespace json = boost::json;

namespace {

struct named_percentile {
  const char* key;
  const char* label;
  double p;
};
constexpr named_percentile reported_percentiles[] = {
    {"p50_s", "p50", 50.0}, {"p90_s", "p90", 90.0},     {"p95_s", "p95", 95.0},
    {"p99_s", "p99", 99.0}, {"p99_9_s", "p99.9", 99.9}, {"p99_99_s", "p99.99", 99.99},
};

std::string format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::string ms(double seconds) { return format("%.3f", seconds * 1e3); }

std::string percentile_line(const latency_histogram& h) {
  if (h.total_count() == 0) return "  (none)\n";
  std::string line = " ";
  for (const auto& np : reported_percentiles)
    line += std::string(" ") + np.label + " " + ms(h.percentile(np.p));
  line += "  max " + ms(h.max()) + "  mean " + ms(h.mean()) + "\n";
  return line;
}

std::uint64_t get_u64(const json::object& o, const char* key) {
  auto* v = o.if_contains(key);
  if (!v) throw std::invalid_argument(std::string("load report: missing '") + key + "'");
  return json::value_to<std::uint64_t>(*v);
}
double get_double(const json::object& o, const char* key) {
  auto* v = o.if_contains(key);
  if (!v) throw std::invalid_argument(std::string("load report: missing '") + key + "'");
  return json::value_to<double>(*v);
}
// Runs, threads and connections: ints that merge_into adds up. A bound far above any real run
// keeps the sum of thousands of merged reports inside an int (past it the sum was undefined).
int get_count(const json::object& o, const char* key) {
  constexpr std::uint64_t most = 1'000'000;
  const std::uint64_t n = get_u64(o, key);
  if (n > most)
    throw std::invalid_argument(std::string("load report: '") + key + "' is " + std::to_string(n) +
                                ", more than " + std::to_string(most));
  return static_cast<int>(n);
}
std::string get_string(const json::object& o, const char* key) {
  auto* v = o.if_contains(key);
  if (!v || !v->is_string())
    throw std::invalid_argument(std::string("load report: missing '") + key + "'");
  return std::string(v->as_string());
}

}  // namespace

double load_result::throughput() const {
  return elapsed > 0 ? static_cast<double>(completed) / elapsed : 0.0;
}

std::uint64_t load_result::failed() const {
  std::uint64_t n = transport_errors;
  for (auto [status, count] : status_counts)
    if (status >= 400) n += count;
  return n;
}

std::uint64_t load_result::succeeded() const {
  std::uint64_t n = 0;
  for (auto [status, count] : status_counts)
    if (status < 400) n += count;
  return n;
}

double load_result::cpu_per_1000_requests() const {
  return sent > 0 ? (cpu_user + cpu_system) * 1000.0 / static_cast<double>(sent) : 0.0;
}

void merge_into(load_result& into, const load_result& from) {
  for (const auto& t : from.targets)
    if (std::find(into.targets.begin(), into.targets.end(), t) == into.targets.end())
      into.targets.push_back(t);
  if (into.schedule != from.schedule) into.schedule += "; " + from.schedule;
  if (into.arrivals != from.arrivals) into.arrivals += "+" + from.arrivals;
  into.offered_rate += from.offered_rate;
  into.duration = std::max(into.duration, from.duration);
  into.warmup = std::max(into.warmup, from.warmup);
  into.threads += from.threads;
  into.max_connections += from.max_connections;
  into.timeout = std::max(into.timeout, from.timeout);
  into.runs += from.runs;
  into.scheduled += from.scheduled;
  into.sent += from.sent;
  into.completed += from.completed;
  into.late += from.late;
  into.unsent += from.unsent;
  into.unfinished += from.unfinished;
  into.retries += from.retries;
  into.transport_errors += from.transport_errors;
  into.interrupted = into.interrupted || from.interrupted;
  into.elapsed = std::max(into.elapsed, from.elapsed);
  for (auto [k, v] : from.status_counts) into.status_counts[k] += v;
  for (const auto& [k, v] : from.error_counts) into.error_counts[k] += v;
  into.latency.merge(from.latency);
  into.latency_all.merge(from.latency_all);
  into.censored += from.censored;
  into.service_time.merge(from.service_time);
  into.send_delay.merge(from.send_delay);
  for (const auto& [name, h] : from.phases) {
    auto it = into.phases.find(name);
    if (it == into.phases.end())
      into.phases.emplace(name, h);
    else
      it->second.merge(h);
  }
  into.server_timing_responses += from.server_timing_responses;
  into.server_timing_malformed += from.server_timing_malformed;
  into.connections_opened += from.connections_opened;
  if (into.per_second.size() < from.per_second.size())
    into.per_second.resize(from.per_second.size());
  for (std::size_t i = 0; i < from.per_second.size(); ++i) {
    auto& a = into.per_second[i];
    const auto& b = from.per_second[i];
    a.sent += b.sent;
    a.completed += b.completed;
    a.errors += b.errors;
    a.latency.merge(b.latency);
  }
  into.cpu_user += from.cpu_user;
  into.cpu_system += from.cpu_system;
}

std::string text_report(const load_result& r) {
  std::ostringstream out;
  out << "headroom load";
  if (r.runs > 1) out << " (" << r.runs << " runs merged)";
  out << ": " << r.method;
  for (const auto& t : r.targets) out << " " << t;
  out << "\n";
  out << "schedule      " << r.schedule << ", " << r.arrivals << " arrivals, " << r.threads
      << (r.threads == 1 ? " thread" : " threads") << ", up to " << r.max_connections
      << " connections, timeout " << r.timeout << " s";
  if (r.interrupted) out << "  [INTERRUPTED: partial results]";
  out << "\n";
  out << "requests      " << r.scheduled << " scheduled, " << r.sent << " sent, " << r.completed
      << " completed, " << r.late << " late (waited for a connection), " << r.unsent << " unsent, "
      << r.unfinished << " unfinished, " << r.retries << " resent on a fresh connection\n";
  out << "rate          offered " << format("%.2f", r.offered_rate) << "/s, achieved throughput "
      << format("%.2f", r.throughput()) << "/s over " << format("%.3f", r.elapsed) << " s\n";
  out << "latency of successful requests (status < 400: " << r.latency.total_count()
      << ") from intended send time, ms:\n"
      << percentile_line(r.latency);
  out << "latency of all requests (" << r.latency_all.total_count() << ") from intended send time";
  if (r.censored > 0)
    out << "; " << r.censored
        << " censored (no response: counted at the time they had waited), so these are LOWER "
           "BOUNDS";
  out << ", ms:\n" << percentile_line(r.latency_all);
  out << "service time from actual send time, ms:\n" << percentile_line(r.service_time);
  out << "send delay (actual minus intended), ms:\n" << percentile_line(r.send_delay);
  out << "status       ";
  if (r.status_counts.empty()) out << " (no responses)";
  for (auto [status, count] : r.status_counts) out << " " << status << ": " << count;
  out << "\n";
  out << "errors       ";
  if (r.error_counts.empty()) out << " none";
  for (const auto& [kind, count] : r.error_counts) out << " " << kind << ": " << count << ";";
  out << "\n";
  if (!r.phases.empty()) {
    out << "server phases (Server-Timing on " << r.server_timing_responses << " responses, "
        << r.server_timing_malformed << " malformed), ms:\n";
    for (const auto& [name, h] : r.phases) {
      char label[32];
      std::snprintf(label, sizeof label, "  %-8s n %-8llu", name.c_str(),
                    static_cast<unsigned long long>(h.total_count()));
      out << label << percentile_line(h);
    }
  } else if (r.server_timing_malformed > 0) {
    out << "server phases: none readable (" << r.server_timing_malformed
        << " malformed Server-Timing headers)\n";
  }
  out << "generator CPU " << format("%.3f", r.cpu_user + r.cpu_system) << " s (user "
      << format("%.3f", r.cpu_user) << ", system " << format("%.3f", r.cpu_system) << "), "
      << format("%.4f", r.cpu_per_1000_requests()) << " s per 1000 requests; "
      << r.connections_opened << " connections opened\n";
  return out.str();
}

json::object histogram_to_json(const latency_histogram& h) {
  json::object o;
  o["count"] = h.total_count();
  o["min_s"] = h.min();
  o["max_s"] = h.max();
  o["mean_s"] = h.mean();
  o["stddev_s"] = h.stddev();
  for (const auto& np : reported_percentiles) o[np.key] = h.percentile(np.p);
  // The lossless part, so reports from several machines merge exactly.
  o["significant_digits"] = h.significant_digits();
  o["sum_s"] = h.sum();
  o["sum_of_squares_s2"] = h.sum_of_squares();
  o["clamped"] = h.clamped_count();
  json::array buckets;
  for (auto [index, count] : h.nonzero_counts()) buckets.push_back(json::array{index, count});
  o["buckets"] = std::move(buckets);
  return o;
}

latency_histogram histogram_from_json(const json::value& v) {
  if (!v.is_object()) throw std::invalid_argument("load report: a histogram is not an object");
  const auto& o = v.as_object();
  latency_histogram h(static_cast<int>(get_u64(o, "significant_digits")));
  std::vector<std::pair<std::uint32_t, std::uint64_t>> counts;
  auto* b = o.if_contains("buckets");
  if (!b || !b->is_array()) throw std::invalid_argument("load report: histogram without buckets");
  for (const auto& pair : b->as_array()) {
    const auto& a = pair.as_array();
    if (a.size() != 2) throw std::invalid_argument("load report: a bucket is not [index, count]");
    counts.emplace_back(json::value_to<std::uint32_t>(a[0]), json::value_to<std::uint64_t>(a[1]));
  }
  h.restore(counts, get_double(o, "min_s"), get_double(o, "max_s"), get_double(o, "sum_s"),
            get_double(o, "sum_of_squares_s2"), get_u64(o, "clamped"));
  if (h.total_count() != get_u64(o, "count"))
    throw std::invalid_argument("load report: histogram buckets do not add up to its count");
  return h;
}

json::object to_json(const load_result& r) {
  json::object o;
  o["format"] = "headroom-load/2";
  o["runs"] = r.runs;
  json::array targets;
  for (const auto& t : r.targets) targets.push_back(json::string(t));
  o["targets"] = std::move(targets);
  o["method"] = r.method;
  o["schedule"] = r.schedule;
  o["arrivals"] = r.arrivals;
  o["offered_rate"] = r.offered_rate;
  o["duration_s"] = r.duration;
  o["warmup_s"] = r.warmup;
  o["threads"] = r.threads;
  o["max_connections"] = r.max_connections;
  o["timeout_s"] = r.timeout;
  o["interrupted"] = r.interrupted;
  o["requests"] = json::object{{"scheduled", r.scheduled}, {"sent", r.sent},
                               {"completed", r.completed}, {"late", r.late},
                               {"unsent", r.unsent},       {"unfinished", r.unfinished},
                               {"retries", r.retries},     {"transport_errors", r.transport_errors},
                               {"failed", r.failed()},     {"succeeded", r.succeeded()}};
  o["elapsed_s"] = r.elapsed;
  o["throughput"] = r.throughput();
  json::object status;
  for (auto [k, v] : r.status_counts) status[std::to_string(k)] = v;
  o["status_counts"] = std::move(status);
  json::object errors;
  for (const auto& [k, v] : r.error_counts) errors[k] = v;
  o["error_counts"] = std::move(errors);
  o["latency"] = histogram_to_json(r.latency);
  o["latency_all"] = histogram_to_json(r.latency_all);
  o["censored"] = r.censored;
  o["latency_all_is_lower_bound"] = r.censored > 0;
  o["service_time"] = histogram_to_json(r.service_time);
  o["send_delay"] = histogram_to_json(r.send_delay);
  json::object phases;
  for (const auto& [name, h] : r.phases) phases[name] = histogram_to_json(h);
  o["phases"] = std::move(phases);
  o["server_timing"] = json::object{{"responses", r.server_timing_responses},
                                    {"malformed", r.server_timing_malformed}};
  o["connections_opened"] = r.connections_opened;
  json::array seconds;
  for (std::size_t i = 0; i < r.per_second.size(); ++i) {
    const auto& s = r.per_second[i];
    seconds.push_back(json::object{{"second", i},
                                   {"sent", s.sent},
                                   {"completed", s.completed},
                                   {"errors", s.errors},
                                   {"p50_s", s.latency.percentile(50)},
                                   {"p99_s", s.latency.percentile(99)},
                                   {"latency", histogram_to_json(s.latency)}});
  }
  o["per_second"] = std::move(seconds);
  o["generator_cpu"] = json::object{{"user_s", r.cpu_user},
                                    {"system_s", r.cpu_system},
                                    {"seconds_per_1000_requests", r.cpu_per_1000_requests()}};
  return o;
}

load_result from_json(const json::value& v) {
  try {
    if (!v.is_object()) throw std::invalid_argument("load report: not a JSON object");
    const auto& o = v.as_object();
    if (get_string(o, "format") != "headroom-load/2")
      throw std::invalid_argument(
          "load report: unknown format (expected headroom-load/2; /1 mixed failed responses into "
          "latency and had no latency_all)");
    load_result r;
    r.runs = get_count(o, "runs");
    r.targets.clear();
    for (const auto& t : o.at("targets").as_array()) r.targets.emplace_back(t.as_string());
    r.method = get_string(o, "method");
    r.schedule = get_string(o, "schedule");
    r.arrivals = get_string(o, "arrivals");
    r.offered_rate = get_double(o, "offered_rate");
    r.duration = get_double(o, "duration_s");
    r.warmup = get_double(o, "warmup_s");
    r.threads = get_count(o, "threads");
    r.max_connections = get_count(o, "max_connections");
    r.timeout = get_double(o, "timeout_s");
    r.interrupted = o.at("interrupted").as_bool();
    const auto& q = o.at("requests").as_object();
    r.scheduled = get_u64(q, "scheduled");
    r.sent = get_u64(q, "sent");
    r.completed = get_u64(q, "completed");
    r.late = get_u64(q, "late");
    r.unsent = get_u64(q, "unsent");
    r.unfinished = get_u64(q, "unfinished");
    r.retries = get_u64(q, "retries");
    r.transport_errors = get_u64(q, "transport_errors");
    r.elapsed = get_double(o, "elapsed_s");
    for (const auto& [k, val] : o.at("status_counts").as_object())
      r.status_counts[std::stoi(std::string(k))] = json::value_to<std::uint64_t>(val);
    for (const auto& [k, val] : o.at("error_counts").as_object())
      r.error_counts[std::string(k)] = json::value_to<std::uint64_t>(val);
    r.latency = histogram_from_json(o.at("latency"));
    r.latency_all = histogram_from_json(o.at("latency_all"));
    r.censored = get_u64(o, "censored");
    r.service_time = histogram_from_json(o.at("service_time"));
    r.send_delay = histogram_from_json(o.at("send_delay"));
    for (const auto& [name, h] : o.at("phases").as_object())
      r.phases.emplace(std::string(name), histogram_from_json(h));
    const auto& st = o.at("server_timing").as_object();
    r.server_timing_responses = get_u64(st, "responses");
    r.server_timing_malformed = get_u64(st, "malformed");
    r.connections_opened = get_u64(o, "connections_opened");
    for (const auto& row : o.at("per_second").as_array()) {
      const auto& s = row.as_object();
      second_stats ps;
      ps.sent = get_u64(s, "sent");
      ps.completed = get_u64(s, "completed");
      ps.errors = get_u64(s, "errors");
      ps.latency = histogram_from_json(s.at("latency"));
      r.per_second.push_back(std::move(ps));
    }
    const auto& cpu = o.at("generator_cpu").as_object();
    r.cpu_user = get_double(cpu, "user_s");
    r.cpu_system = get_double(cpu, "system_s");
    return r;
  } catch (const std::invalid_argument&) {
    throw;
  } catch (const std::exception& e) {
    // Boost.JSON reports a wrong type or a missing key as system_error / out_of_range.
    throw std::invalid_argument(std::string("load report: ") + e.what());
  }
}

void write_percentile_distribution(std::ostream& out, const latency_histogram& h) {
  char line[160];
  std::snprintf(line, sizeof line, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount",
                "1/(1-Percentile)");
  out << line;
  const std::uint64_t total = h.total_count();
  std::uint32_t last_index = 0;
  if (total > 0) {
    // HdrHistogram's percentile iterator: 5 ticks per halving of the distance to 100 %.
    constexpr int ticks_per_half_distance = 5;
    double level = 0.0;
    std::uint64_t cumulative = 0;
    for (std::uint32_t i = 0; i < h.counts_length(); ++i) {
      std::uint64_t c = h.count_at_index(i);
      if (c == 0) continue;
      cumulative += c;
      last_index = i;
      while (100.0 * static_cast<double>(cumulative) / static_cast<double>(total) >= level) {
        double p = level / 100.0;
        std::snprintf(line, sizeof line, "%12.3f %2.12f %10llu %14.2f\n",
                      h.highest_equivalent(i) * 1e3, p, static_cast<unsigned long long>(cumulative),
                      1.0 / (1.0 - p));
        out << line;
        auto halvings = static_cast<long>(std::log(100.0 / (100.0 - level)) / std::log(2.0));
        double ticks = ticks_per_half_distance * std::pow(2.0, static_cast<double>(halvings + 1));
        level += 100.0 / ticks;
        if (cumulative == total) break;
      }
      if (cumulative == total) break;
    }
    std::snprintf(line, sizeof line, "%12.3f %2.12f %10llu\n",
                  h.highest_equivalent(last_index) * 1e3, 1.0,
                  static_cast<unsigned long long>(total));
    out << line;
  }
  std::snprintf(line, sizeof line, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", h.mean() * 1e3,
                h.stddev() * 1e3);
  out << line;
  std::snprintf(line, sizeof line, "#[Max     = %12.3f, Total count    = %12llu]\n", h.max() * 1e3,
                static_cast<unsigned long long>(total));
  out << line;
  std::snprintf(line, sizeof line, "#[Buckets = %12d, SubBuckets     = %12d]\n", h.bucket_count(),
                h.sub_bucket_count());
  out << line;
}

void write_per_second_csv(std::ostream& out, const load_result& r) {
  out << "second,sent,completed,p50_s,p99_s,errors\n";
  for (std::size_t i = 0; i < r.per_second.size(); ++i) {
    const auto& s = r.per_second[i];
    out << i << "," << s.sent << "," << s.completed << ","
        << format("%.6f", s.latency.percentile(50)) << ","
        << format("%.6f", s.latency.percentile(99)) << "," << s.errors << "\n";
  }
}

}  // namespace headroom::calibrate
