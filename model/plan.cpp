// The capacity plan (plan.hpp): a bracketing and bisection search over the offered rate whose
// every step simulates `runs` SLO windows, cached by rate, and the arithmetic around it.
#include "plan.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "duration.hpp"

namespace headroom {

namespace {

// Two-sided level of the interval given for a capacity (plan.hpp capacity_estimate).
constexpr double capacity_interval_level = 0.9;
// The interval's ends are searched to this precision (or the capacity's, if coarser).
constexpr double interval_end_precision = 0.05;
// The search never goes below this fraction of the first rate that failed: a capacity that
// low is reported as an unreachable SLO (the fastest windows already miss it).
constexpr double lowest_rate_fraction = 1.0 / 1024;
// ... nor below a rate that gives a window fewer requests than this: a "p99" of fewer is the
// window's slowest request, and a rate that low is no service's capacity.
constexpr double fewest_requests_per_window = 10;

std::string fixed(double v, int digits) {
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(digits);
  os << v;
  return os.str();
}

// Rates as people read them: "1,200", "85.5", "0.75".
std::string format_rate(double r) {
  if (!std::isfinite(r)) return "inf";
  if (r < 100) return fixed(r, r < 10 ? 2 : 1);
  std::string digits = fixed(std::round(r), 0), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string percent(double fraction) { return fixed(100 * fraction, 0) + " %"; }

// A window's percentile for messages, three significant digits ("4.84 ms", "1.23 s"), or
// "fell over" for a window that could not keep up.
std::string window_latency(double seconds) {
  if (!std::isfinite(seconds)) return "fell over";
  const bool in_ms = seconds < 1;
  std::ostringstream os;
  os.precision(3);
  os << (in_ms ? seconds * 1000 : seconds) << (in_ms ? " ms" : " s");
  return os.str();
}

// Three significant digits: the rates tried read cleanly and are still 0.1-1 % apart.
double round_rate(double r) {
  if (!(r > 0)) return r;
  double scale = std::pow(10.0, std::floor(std::log10(r)) - 2);
  return std::round(r / scale) * scale;
}

scenario at_rate(scenario s, double rate) {
  s.arrivals.rate = rate;
  return s;
}

// The smallest rate overload_check refuses (the mean demand of some resource reaches its
// capacity): no capacity lies above it. Empty when nothing bounds the rate.
std::optional<double> refusal_rate(const scenario& s) {
  double lo = 0, hi = 1;
  while (overload_check(at_rate(s, hi)).empty()) {
    lo = hi;
    hi *= 2;
    if (hi > 1e9) return std::nullopt;
  }
  for (int i = 0; i < 60 && hi - lo > 1e-6 * hi; ++i) {
    double mid = 0.5 * (lo + hi);
    (overload_check(at_rate(s, mid)).empty() ? lo : hi) = mid;
  }
  return hi;
}

std::string pool_text(const scenario& s) {
  if (!s.use_pool) return "no pool";
  const pool_config& p = s.pool;
  return "max_open " +
         (p.max_open > 0 ? std::to_string(p.max_open) : std::string("0 (unlimited)")) +
         ", max_idle " + std::to_string(p.max_idle);
}

// The searches of one scenario setting, sharing one cache of evaluated rates.
class capacity_search {
 public:
  // `need`: windows of `runs` that must meet the SLO for a rate to pass.
  capacity_search(const scenario& s, const plan_request& r, int runs, int need,
                  const std::vector<rate_evaluation>& known)
      : scenario_(s), request_(r), runs_(runs), need_(need), refusal_(refusal_rate(s)) {
    for (const auto& e : known) cache_[e.rate] = e;
    // Every window of the highest rate must fit in memory (validate: 5,000,000 requests).
    highest_ = 5e6 / (r.window + r.window_warmup);
    memory_bound_ = !refusal_ || *refusal_ > highest_;
    if (refusal_) highest_ = std::min(highest_, *refusal_);
    lowest_ = fewest_requests_per_window / r.window;
  }

  const rate_evaluation& at(double rate) {
    auto it = cache_.find(rate);
    if (it != cache_.end()) return it->second;
    auto start = std::chrono::steady_clock::now();
    rate_evaluation e;
    e.rate = rate;
    e.runs = runs_;
    scenario s = at_rate(scenario_, rate);
    e.reason = overload_check(s);
    e.refused = !e.reason.empty();
    if (!e.refused) {
      // A quarter of the windows first: when they already miss more than the confidence
      // allows, the rate fails whatever the rest do (windows that fall over are the slowest to
      // simulate). Otherwise all of them; the first ones again, with the same seeds.
      const int first = std::min(runs_, std::max(10, runs_ / 4));
      e.live = predict_live_runs(s, first);
      e.runs = first;
      e.met = static_cast<int>(std::lround(e.live.p_slo * e.live.runs));
      if (first < runs_ && first - e.met <= runs_ - need_) {
        e.live = predict_live_runs(s, runs_);
        e.runs = runs_;
        e.met = static_cast<int>(std::lround(e.live.p_slo * e.live.runs));
      }
    }
    if (request_.progress) {
      double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::ostringstream os;
      os << format_rate(rate) << " req/s: ";
      if (e.refused)
        os << e.reason;
      else
        os << e.met << "/" << e.runs << " windows meet " << request_.slo.text() << " ("
           << request_.slo.name() << " median " << window_latency(e.live.median) << ") ["
           << fixed(t, 1) << " s]";
      request_.progress(os.str());
    }
    return cache_[rate] = std::move(e);
  }

  // The largest rate where `holds` is true, found by bracketing then geometric bisection until
  // hi <= lo x (1 + precision). Rates already evaluated narrow the bracket first. Empty when
  // `holds` fails down to the lowest rate searched; `lowest_tried` says which that was.
  struct bracket {
    std::optional<double> lo;  // holds
    double hi = 0;             // fails (or the refusal rate)
    double lowest_tried = 0;
  };
  template <class Holds>
  bracket largest_where(Holds holds, double precision, std::optional<double> start) {
    bracket b;
    b.hi = highest_;
    // What the cache already says (non-monotone noise: the lowest failure wins).
    for (const auto& [rate, e] : cache_)
      if (!holds(e)) b.hi = std::min(b.hi, rate);
    for (const auto& [rate, e] : cache_)
      if (holds(e) && rate < b.hi) b.lo = std::max(b.lo.value_or(0), rate);
    if (!b.lo) {
      // Downwards by halving from the guess until it holds, or to the lowest rate searched.
      const double guess = round_rate(std::min(start.value_or(b.hi), b.hi / 2));
      const double floor = std::max(lowest_, b.hi * lowest_rate_fraction);
      for (double r = guess;; r = round_rate(r / 2)) {
        b.lowest_tried = r;
        if (holds(at(r))) {
          b.lo = r;
          break;
        }
        b.hi = std::min(b.hi, r);
        if (r / 2 < floor) return b;
      }
    }
    while (b.hi > *b.lo * (1 + precision)) {
      double mid = round_rate(std::sqrt(*b.lo * b.hi));
      if (mid <= *b.lo || mid >= b.hi) break;  // rounding: as close as three digits go
      (holds(at(mid)) ? *b.lo : b.hi) = mid;
    }
    return b;
  }

  std::vector<rate_evaluation> evaluations() const {
    std::vector<rate_evaluation> out;
    for (const auto& [rate, e] : cache_) out.push_back(e);
    return out;
  }
  // The highest rate searched when it is set by memory, not by the scenario's demand: a
  // capacity found just under it may be higher still.
  std::optional<double> memory_limit() const {
    return memory_bound_ ? std::optional<double>(highest_) : std::nullopt;
  }

 private:
  scenario scenario_;
  const plan_request& request_;
  int runs_, need_;
  std::optional<double> refusal_;
  double highest_ = 0, lowest_ = 0;  // the rates searched: [lowest_, highest_)
  bool memory_bound_ = false;
  std::map<double, rate_evaluation> cache_;
};

void check_request(const plan_request& r) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw scenario_error(what);
  };
  need(std::isfinite(r.target_rps) && r.target_rps > 0, "--target-rps: must be > 0 req/s");
  need(r.confidence > 0 && r.confidence < 1, "--confidence: must be in (0, 1)");
  need(r.redundancy >= 0, "--redundancy: must be >= 0");
  need(r.zones >= 1, "--zones: must be >= 1");
  need(!(r.survive_zone_loss && r.zones < 2), "--survive-zone-loss: needs --zones 2 or more");
  need(std::isfinite(r.window) && r.window > 0, "--window: must be > 0");
  need(std::isfinite(r.window_warmup) && r.window_warmup >= 0, "--window-warmup: must be >= 0");
  need(r.runs == 0 || r.runs >= 10, "--runs: at least 10 windows per rate");
  need(r.precision > 0 && r.precision < 1, "--precision: must be in (0, 1)");
  need(r.slo.quantile > 0 && r.slo.quantile < 1 && r.slo.latency > 0, "--slo: not a valid SLO");
  need(r.database_max_connections >= 1, "--db-max-connections: must be >= 1");
}

}  // namespace

scenario plan_scenario(scenario s, const plan_request& r) {
  if (s.arrivals.process == arrival_process::trace)
    throw scenario_error("arrivals.process: plan needs arrivals at a rate, not a trace");
  s.run.live_length = r.window;
  s.run.live_warmup = r.window_warmup;
  s.run.slo_quantile = r.slo.quantile;
  s.run.slo_latency = r.slo.latency;
  if (r.exclude_generator) {
    s.generator_cpu = distribution::none();
    s.client_connections = 0;
  }
  if (r.service_cores) {
    s.deployment.service_cores = *r.service_cores;
    if (s.deployment.database_cores <= 0) s.deployment.database_cores = s.cores;
  } else if ((r.database_cores || r.database_rtt) && colocated(s)) {
    throw scenario_error(
        "--db-cores / --db-rtt: need --cores (the service's cores per instance: a split "
        "deployment)");
  }
  if (!colocated(s)) {
    if (r.database_cores) s.deployment.database_cores = *r.database_cores;
    if (r.database_rtt)
      s.deployment.database_rtt =
          *r.database_rtt > 0 ? distribution::deterministic(*r.database_rtt) : distribution::none();
    else if (s.deployment.database_rtt.mean() <= 0)
      s.deployment.database_rtt = distribution::deterministic(default_database_rtt);
  }
  s.deployment.instances = 1;  // the capacity is one instance's; the database check sets n
  s.deployment.database_max_connections = r.database_max_connections;
  s.arrivals.rate = 1;  // any valid rate: the search sets its own
  validate(s);
  return s;
}

namespace {

std::string unreachable_reason(const plan_request& r, const capacity_search::bracket& b,
                               capacity_search& search) {
  std::ostringstream os;
  os << "no rate meets " << r.slo.text() << " in " << percent(r.confidence) << " of "
     << format_duration(r.window) << " windows: ";
  if (b.lowest_tried <= 0) {
    os << "every rate is overloaded";
    return os.str();
  }
  const rate_evaluation& e = search.at(b.lowest_tried);
  if (e.refused) {
    os << "even at " << format_rate(e.rate) << " req/s it is " << e.reason;
  } else if (e.live.p_stable < 0.5) {
    os << "even at " << format_rate(e.rate) << " req/s most windows fell over (unstable setting)";
  } else {
    os << "even at " << format_rate(e.rate) << " req/s a window's " << r.slo.name() << " is "
       << window_latency(e.live.median) << " (median; " << window_latency(e.live.low) << " .. "
       << window_latency(e.live.high) << " over " << e.runs << " windows), " << e.met << "/"
       << e.runs << " within " << format_duration(r.slo.latency);
  }
  return os.str();
}

// Whether a long run at `rate` keeps up (prediction.hpp: replications of run.requests each,
// none falling over), and why not. The p99 is wanted only loosely: stability is the question.
struct long_run {
  bool stable = true;
  std::string reason;
};
long_run check_long_run(const scenario& s, double rate, const plan_request& r) {
  auto start = std::chrono::steady_clock::now();
  scenario t = at_rate(s, rate);
  t.run.live_length = 0;
  long_run out;
  out.reason = overload_check(t);
  if (out.reason.empty()) {
    precision_goal goal = default_goal(t);
    goal.relative_half_width = std::max(goal.relative_half_width, 0.05);
    prediction p = run_to_precision(t, goal);
    out.stable = p.stable;
    out.reason = p.reason;
  } else {
    out.stable = false;
  }
  if (r.progress) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.progress(format_rate(rate) + " req/s: the long run " +
               (out.stable ? std::string("keeps up") : "falls over (" + out.reason + ")") + " [" +
               fixed(secs, 1) + " s]");
  }
  return out;
}

// Windows start from a settled instance; a metastable setting (the default pool's dial storms)
// can meet the SLO for a minute and still fall over in a longer run, and production runs for
// days. So a capacity must also keep up in the long run: lowered to the largest rate that
// does, to the search's precision, with the reason in `note`.
void hold_in_the_long_run(const scenario& s, const plan_request& r, capacity_estimate& c) {
  long_run at_capacity = check_long_run(s, c.rps, r);
  if (at_capacity.stable) return;
  double hi = c.rps, lo = round_rate(c.rps / 2);
  // Halving: a setting that falls over at a sixteenth of its window capacity is unstable.
  std::string why = at_capacity.reason;  // the lowest rate's that fell over
  for (;;) {
    long_run at_lo = check_long_run(s, lo, r);
    if (at_lo.stable) break;
    why = at_lo.reason;
    hi = lo;
    lo = round_rate(lo / 2);
    if (lo < c.rps / 16) {
      c.found = false;
      c.reason = "unstable setting: windows of " + format_duration(r.window) + " meet " +
                 r.slo.text() + " up to " + format_rate(c.rps) +
                 " req/s, but a long run falls over even at " + format_rate(hi) + " req/s (" + why +
                 ")";
      return;
    }
  }
  while (hi > lo * (1 + r.precision)) {
    double mid = round_rate(std::sqrt(lo * hi));
    if (mid <= lo || mid >= hi) break;
    long_run at_mid = check_long_run(s, mid, r);
    if (!at_mid.stable) why = at_mid.reason;
    (at_mid.stable ? lo : hi) = mid;
  }
  c.note = "limited by the long run: windows of " + format_duration(r.window) + " meet " +
           r.slo.text() + " up to " + format_rate(c.rps) + " req/s, but a long run at " +
           format_rate(hi) + " req/s falls over (" + why + ")";
  c.rps = lo;
  c.low = std::min(c.low, lo);
  c.high = hi;
}

}  // namespace

int default_runs(double confidence) {
  return std::max(40, static_cast<int>(std::ceil(4 / (1 - confidence) - 1e-9)));
}

proportion_interval wilson_interval(int met, int n, double level) {
  proportion_interval out;
  if (n <= 0) return out;
  const double z = normal_quantile(0.5 + level / 2), z2 = z * z, nn = n;
  const double p = met / nn;
  const double centre = (p + z2 / (2 * nn)) / (1 + z2 / nn);
  const double half = z * std::sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / (1 + z2 / nn);
  out.low = std::max(0.0, centre - half);
  out.high = std::min(1.0, centre + half);
  return out;
}

instance_count count_instances(double target_rps, double capacity_rps, int redundancy, int zones,
                               bool survive_zone_loss) {
  if (!(capacity_rps > 0) || !(target_rps > 0))
    throw std::invalid_argument("count_instances: target and capacity must be > 0");
  if (zones < 1 || redundancy < 0)
    throw std::invalid_argument("count_instances: zones >= 1 and redundancy >= 0");
  if (survive_zone_loss && zones < 2)
    throw std::invalid_argument("count_instances: surviving a zone's loss needs two zones");
  instance_count c;
  // A hair of tolerance so 10000 / 2500 is 4, not 5 from a rounding error.
  c.needed = static_cast<int>(std::ceil(target_rps / capacity_rps - 1e-9));
  c.with_redundancy = c.needed + redundancy;
  std::ostringstream os;
  os << "instances = ceil(" << format_rate(target_rps) << " / " << format_rate(capacity_rps)
     << ") + " << redundancy << " = " << c.needed << " + " << redundancy << " = "
     << c.with_redundancy;
  c.arithmetic.push_back(os.str());
  c.instances = c.with_redundancy;
  if (zones > 1) {
    int per_zone = (c.with_redundancy + zones - 1) / zones;
    std::ostringstream z;
    z << "zones " << zones << ": ceil(" << c.with_redundancy << " / " << zones << ") = " << per_zone
      << " per zone";
    if (survive_zone_loss) {
      // The zones left after one is lost must still carry the target on their own.
      int for_loss = (c.needed + zones - 2) / (zones - 1);
      z << "; losing one zone must leave " << c.needed << ": ceil(" << c.needed << " / "
        << zones - 1 << ") = " << for_loss << " per zone";
      per_zone = std::max(per_zone, for_loss);
    }
    c.per_zone = per_zone;
    c.instances = per_zone * zones;
    z << " -> " << c.instances << " instances";
    c.arithmetic.push_back(z.str());
  } else {
    c.per_zone = c.instances;
  }
  return c;
}

std::vector<pool_setting> pool_grid() {
  std::vector<pool_setting> grid;
  for (int open : {0, 8, 16, 32})
    for (int idle : {2, 8, 16, 32})
      if (open == 0 || idle <= open) grid.push_back({open, idle});
  return grid;
}

capacity_estimate find_capacity(const scenario& s, const plan_request& r, bool with_interval,
                                std::optional<double> start,
                                const std::vector<rate_evaluation>& known) {
  const int runs = r.runs > 0 ? r.runs : default_runs(r.confidence);
  // A window meets "P >= confidence" when at least this many of the runs met the SLO.
  const int need = static_cast<int>(std::ceil(r.confidence * runs - 1e-9));
  capacity_search search(s, r, runs, need, known);
  capacity_estimate out;
  auto meets = [&](const rate_evaluation& e) { return !e.refused && e.met >= need; };
  auto b = search.largest_where(meets, r.precision, start);
  if (!b.lo) {
    out.reason = unreachable_reason(r, b, search);
    out.evaluations = search.evaluations();
    return out;
  }
  out.found = true;
  out.rps = *b.lo;
  if (auto limit = search.memory_limit(); limit && b.hi >= *limit)
    out.note = "at least " + format_rate(out.rps) + " req/s: a " + format_duration(r.window) +
               " window at a higher rate holds more requests than memory allows; use a shorter "
               "--window";
  out.low = out.rps;
  out.high = b.hi;
  if (with_interval) {
    // Sure above the confidence (the interval's low end holds it) / maybe above it (its high
    // end does): the rates where the N windows stop telling.
    auto sure = [&](const rate_evaluation& e) {
      return !e.refused &&
             wilson_interval(e.met, e.runs, capacity_interval_level).low >= r.confidence;
    };
    auto maybe = [&](const rate_evaluation& e) {
      return !e.refused &&
             wilson_interval(e.met, e.runs, capacity_interval_level).high >= r.confidence;
    };
    // Each end to a coarser precision than the capacity: it is a range, and each step near
    // the knee costs as much as the capacity's own.
    const double end_precision = std::max(r.precision, interval_end_precision);
    // With too few windows not even all of them meeting the SLO makes it sure: the low end is
    // then unknown (0), not searched down to the floor in vain.
    out.low_known = wilson_interval(runs, runs, capacity_interval_level).low >= r.confidence;
    if (out.low_known) {
      auto low = search.largest_where(sure, end_precision, out.rps);
      out.low_known = low.lo.has_value();
      out.low = std::min(out.rps, low.lo.value_or(0));
    } else {
      out.low = 0;
    }
    auto high = search.largest_where(maybe, end_precision, out.rps);
    out.high = std::max(b.hi, high.hi);
    hold_in_the_long_run(s, r, out);
  }
  out.evaluations = search.evaluations();
  return out;
}

namespace {

std::optional<double> utilization(const prediction& p, const std::string& name) {
  for (const auto& [k, v] : p.utilization)
    if (k == name) return v.value;
  return std::nullopt;
}

// What each instance sees with all of them up, the target split evenly. Split, the whole
// deployment is simulated (n instances sharing the database: its figures are per instance
// means); co-located, one instance at target / n (n instances on one machine is no plan).
void describe_at_target(plan& p, const scenario& s) {
  const plan_request& r = p.request;
  const int n = p.chosen.count->instances;
  p.rps_per_instance = r.target_rps / n;
  scenario at = at_rate(s, p.rps_per_instance);
  if (p.split) {
    at.deployment.instances = n;
    at.arrivals.rate = r.target_rps;
  }
  if (r.progress)
    r.progress("at the target: " + format_rate(p.rps_per_instance) + " req/s per instance" +
               (p.split ? ", " + std::to_string(n) + " instances sharing the database" : ""));
  p.at_target = predict(at);
  const prediction& t = *p.at_target;
  std::ostringstream line;
  line << "at " << format_rate(p.rps_per_instance) << " req/s per instance: ";
  if (!t.stable) {
    line << "unstable (" << t.reason << ")";
  } else {
    line << r.slo.name() << " " << window_latency(t.live.median) << " in a "
         << format_duration(r.window) << " window (" << window_latency(t.live.low) << " .. "
         << window_latency(t.live.high) << ", 90 % of windows), ";
    if (p.split)
      line << "service CPU " << percent(utilization(t, "service_cpu").value_or(0));
    else
      line << "CPU " << percent(utilization(t, "cpu").value_or(0));
    if (t.has_pool) line << ", " << fixed(t.pool.dials_per_s.value, 1) << " dials/s";
  }
  p.summary.push_back(line.str());
}

std::optional<double> database_cpu(const prediction& t) {
  auto u = utilization(t, "database_cpu");
  return u ? u : utilization(t, "cpu_database");
}

// The database's CPU demand at the target in cores: from the whole deployment's run when it
// kept up, else from the same deployment on a database host too big to saturate (its
// utilisation there is its demand).
double database_demand_cores(plan& p, const scenario& s) {
  const prediction& t = *p.at_target;
  const double cores = s.deployment.database_cores;
  if (t.stable && database_cpu(t)) return *database_cpu(t) * cores;
  scenario big = at_rate(s, p.request.target_rps);
  big.deployment.instances = p.chosen.count->instances;
  big.deployment.database_cores = 1000;  // far above any demand a plan meets here
  big.run.live_length = 0;
  if (p.request.progress)
    p.request.progress("the database's demand: the deployment on 1000 database cores");
  prediction unbounded = predict(big);
  return database_cpu(unbounded).value_or(0) * big.deployment.database_cores;
}

// The shared database at the target: connections against max_connections, dials the
// postmaster must sustain, its CPU; when it saturates first the plan is refused with the
// reason and the cores it would need.
void check_database(plan& p, const scenario& s) {
  const plan_request& r = p.request;
  const int n = p.chosen.count->instances;
  const prediction& t = *p.at_target;
  auto& db = p.database;
  std::ostringstream d;
  d << "database: " << n << " instances";
  if (!p.split) {
    // Co-located: each instance with its own database on its host; one of them simulated.
    db.cpu_at_target = database_cpu(t);
    if (t.has_pool && t.replications > 0) {
      db.dials_per_s = t.pool.dials_per_s.value * n;
      db.connections_peak = t.database_peak_connections;
      db.refused_dials_per_s = t.pool.failed_dials_per_s.value * n;
    }
    d << " each with its own database";
    if (db.dials_per_s) d << ", " << fixed(*db.dials_per_s, 1) << " dials/s in all";
    if (db.connections_peak)
      d << ", connections peak " << fixed(*db.connections_peak, 0) << " of max_connections "
        << db.max_connections << " at each";
    if (db.cpu_at_target) d << ", its CPU " << percent(*db.cpu_at_target) << " of the shared cores";
    p.summary.push_back(d.str());
    if (db.refused_dials_per_s && *db.refused_dials_per_s > 0) {
      db.bottleneck = true;
      p.feasible = false;
      p.reason = "the database refuses connections first: each instance's pool (max_open " +
                 std::to_string(s.pool.max_open) + (s.pool.max_open == 0 ? ", unlimited" : "") +
                 ") wants more than its database's max_connections " +
                 std::to_string(db.max_connections) + ", and PostgreSQL refuses " +
                 fixed(*db.refused_dials_per_s / n, 1) +
                 " dials/s at each (modelled: each a failed request); bound max_open to at most "
                 "max_connections or raise it";
      p.summary.push_back("refused: " + p.reason);
    }
    return;
  }
  // Split: the whole deployment was simulated at the target.
  db.cores = s.deployment.database_cores;
  db.cpu_at_target = database_cpu(t);
  if (t.has_pool && t.replications > 0) {
    db.connections_peak = t.database_peak_connections;
    db.dials_per_s = t.database_dials_per_s.value;
    db.refused_dials_per_s = t.pool.failed_dials_per_s.value * n;
  }
  if (db.dials_per_s) d << ", " << fixed(*db.dials_per_s, 1) << " dials/s for the postmaster";
  if (db.connections_peak)
    d << ", connections peak " << fixed(*db.connections_peak, 0) << " of max_connections "
      << db.max_connections;
  if (db.cpu_at_target)
    d << ", its CPU " << percent(*db.cpu_at_target) << " of " << fixed(*db.cores, 0) << " cores";
  // One instance alone meets the SLO at this rate (its capacity is above it): with n of them,
  // what they share, the database, is what can break it.
  std::string why;
  if (db.connections_peak && *db.connections_peak > db.max_connections)
    why = "its connections peak at " + fixed(*db.connections_peak, 0) + " > max_connections " +
          std::to_string(db.max_connections);
  else if (db.refused_dials_per_s && *db.refused_dials_per_s > 0)
    why = "it refuses " + fixed(*db.refused_dials_per_s, 1) +
          " dials/s past max_connections " + std::to_string(db.max_connections) +
          " (modelled: each a failed request)";
  else if (!t.stable)
    why = "the deployment falls over (" + t.reason + ")";
  else if (t.live.computed && t.live.p_slo >= 0 && t.live.p_slo < r.confidence)
    why = "only " + percent(t.live.p_slo) + " of " + format_duration(r.window) + " windows meet " +
          r.slo.text() + " with " + std::to_string(n) + " instances sharing it";
  const double demand = database_demand_cores(p, s);
  db.cores_needed = std::ceil(demand / database_cpu_ceiling - 1e-9);
  d << "; it needs " << fixed(*db.cores_needed, 0) << " cores to stay under "
    << percent(database_cpu_ceiling) << " (demand " << fixed(demand, 1) << " cores)";
  p.summary.push_back(d.str());
  if (!why.empty()) {
    db.bottleneck = true;
    p.feasible = false;
    p.reason = "the database saturates first at " + format_rate(r.target_rps) + " req/s: " + why +
               "; it needs about " + fixed(*db.cores_needed, 0) + " cores (has " +
               fixed(*db.cores, 0) + ")";
    p.summary.push_back("refused: " + p.reason);
  }
}

// Screens the grid at a coarser precision from the chosen setting's capacity, then searches the
// best again at full precision with its interval; recommends it when it beats the chosen one
// by more than the screening's precision (noise must not move a setting).
void optimize_pool(plan& p, const scenario& s) {
  const plan_request& r = p.request;
  plan_request coarse = r;
  coarse.precision = std::max(r.precision, 0.05);
  std::optional<double> guess;
  if (p.chosen.capacity.found) guess = p.chosen.capacity.rps;
  auto with_pool = [&](const pool_setting& g) {
    scenario t = s;
    t.pool.max_open = g.max_open;
    t.pool.max_idle = g.max_idle;
    return t;
  };
  std::optional<setting_plan> best;
  for (const pool_setting& g : pool_grid()) {
    if (g.max_open == p.chosen.pool.max_open && g.max_idle == p.chosen.pool.max_idle) continue;
    scenario t = with_pool(g);
    if (r.progress) r.progress("screening " + pool_text(t));
    setting_plan sp;
    sp.pool = g;
    sp.capacity = find_capacity(t, coarse, false, guess);
    if (sp.capacity.found && (!best || sp.capacity.rps > best->capacity.rps)) best = sp;
  }
  const double own = p.chosen.capacity.found ? p.chosen.capacity.rps : 0;
  if (best && best->capacity.rps > own * (1 + coarse.precision)) {
    scenario t = with_pool(best->pool);
    if (r.progress) r.progress("refining " + pool_text(t));
    best->capacity = find_capacity(t, r, true, best->capacity.rps, best->capacity.evaluations);
    if (best->capacity.found)
      best->count = count_instances(r.target_rps, best->capacity.rps, r.redundancy, r.zones,
                                    r.survive_zone_loss);
  }
  if (!best || !best->count || best->capacity.rps <= own) {
    p.summary.push_back("pool: no setting of the grid beats " + pool_text(s) + " by more than " +
                        percent(coarse.precision));
    return;
  }
  p.recommendation = best;
  // One line as a person would say it: "max_idle 2 -> 8: capacity 1,200 -> 3,100 req/s;
  // instances 10 -> 5".
  std::vector<std::string> changes;
  if (best->pool.max_open != p.chosen.pool.max_open)
    changes.push_back("max_open " + std::to_string(p.chosen.pool.max_open) + " -> " +
                      std::to_string(best->pool.max_open));
  if (best->pool.max_idle != p.chosen.pool.max_idle)
    changes.push_back("max_idle " + std::to_string(p.chosen.pool.max_idle) + " -> " +
                      std::to_string(best->pool.max_idle));
  std::ostringstream line;
  line << "pool: " << changes[0] << (changes.size() > 1 ? ", " + changes[1] : "") << ": capacity "
       << (own > 0 ? format_rate(own) : std::string("none")) << " -> "
       << format_rate(best->capacity.rps) << " req/s; instances "
       << (p.chosen.count ? std::to_string(p.chosen.count->instances) : std::string("none"))
       << " -> " << best->count->instances;
  p.summary.push_back(line.str());
}

}  // namespace

// The chosen setting at the median and at the slow end of one run's machine speed (plan.hpp).
// Each a search without its interval (screening), started at the capacity found.
static void speed_spread(plan& p, const scenario& s) {
  if (!(s.speed_sigma > 0)) return;
  const plan_request& r = p.request;
  const double sigma = s.speed_sigma;
  // One run's factor: ln f = -sigma^2 / 2 + sigma x, x normal, or Student's t when sigma rests
  // on few repeats (speed_sigma_dof 1-100; the model draws it so), so the slow end is wider.
  const int dof = s.speed_sigma_dof;
  const double z = dof > 0 && dof <= 100 ? std::min(student_t_quantile(0.95, dof), 6.0)  // cut
                                         : 1.6448536269514722;
  const double median = std::exp(-0.5 * sigma * sigma);
  const double slow = std::exp(-0.5 * sigma * sigma + z * sigma);
  std::string line = "machine speed (run-to-run sigma " + fixed(sigma, 2) + "):";
  for (auto [name, factor] :
       {std::pair<const char*, double>{"median", median}, {"slow end", slow}}) {
    plan::speed_case c;
    c.name = name;
    c.factor = factor;
    scenario at = s;
    at.speed_sigma = 0;
    at.speed_factor = s.speed_factor * factor;
    if (r.progress)
      r.progress("capacity at the " + c.name + " of machine speed (CPU x " + fixed(factor, 2) +
                 ")");
    c.capacity = find_capacity(at, r, false, p.chosen.capacity.rps);
    if (c.capacity.found)
      c.count =
          count_instances(r.target_rps, c.capacity.rps, r.redundancy, r.zones, r.survive_zone_loss);
    line += std::string(c.name == "median" ? " at the median"
                                           : "; at the slow end, the 95th percentile") +
            " (CPU x " + fixed(factor, 2) + "): " +
            (c.count ? format_rate(c.capacity.rps) + " req/s per instance, " +
                           std::to_string(c.count->instances) + " instances"
                     : "no capacity (" + c.capacity.reason + ")");
    p.speed_spread.push_back(std::move(c));
  }
  p.summary.push_back(line);
}

plan make_plan(scenario s, const plan_request& r) {
  auto start_time = std::chrono::steady_clock::now();
  check_request(r);
  s = plan_scenario(std::move(s), r);
  plan p;
  p.request = r;
  p.request.runs = r.runs > 0 ? r.runs : default_runs(r.confidence);
  p.scenario_name = s.name;
  p.use_pool = s.use_pool;
  p.split = !colocated(s);
  if (r.optimize_pool && !s.use_pool)
    throw scenario_error("--optimize-pool: the scenario has no pool (pool.enabled false)");
  p.database.max_connections = r.database_max_connections;
  p.chosen.pool = {s.pool.max_open, s.pool.max_idle};
  if (r.progress)
    r.progress("capacity of " + pool_text(s) + ": " + std::to_string(p.request.runs) +
               " windows of " + format_duration(r.window) + " per rate");
  p.chosen.capacity = find_capacity(s, r, true);
  const capacity_estimate& c = p.chosen.capacity;
  p.summary.push_back("target " + format_rate(r.target_rps) + " req/s, SLO " + r.slo.text() +
                      " in " + percent(r.confidence) + " of " + format_duration(r.window) +
                      " windows, " + pool_text(s));
  if (!c.found) {
    p.reason = c.reason;
    p.summary.push_back("no plan: " + p.reason);
  } else {
    p.chosen.count =
        count_instances(r.target_rps, c.rps, r.redundancy, r.zones, r.survive_zone_loss);
    p.summary.push_back("capacity per instance: " + format_rate(c.rps) + " req/s (" +
                        (c.low_known ? format_rate(c.low) : std::string("unknown")) + " .. " +
                        format_rate(c.high) + ")" +
                        (c.low_known ? "" : "; the low end needs more windows (--runs)"));
    if (!c.note.empty()) p.summary.push_back("capacity " + c.note);
    for (const auto& line : p.chosen.count->arithmetic) p.summary.push_back(line);
    p.feasible = true;
    describe_at_target(p, s);
    check_database(p, s);
    speed_spread(p, s);
  }
  if (r.optimize_pool) optimize_pool(p, s);
  p.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return p;
}

}  // namespace headroom
