// Measured steps to a calibrated scenario (calibration_fit.hpp).
#include "calibration_fit.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "fit_demands.hpp"
#include "fit_distribution.hpp"
#include "fit_stalls.hpp"
#include "fit_variability.hpp"
#include "fit_wakeup.hpp"
#include "service_defaults.hpp"

namespace headroom::calibrate {
namespace json = boost::json;
namespace {

// A connection's life on this kind of machine (DESIGN.md, "Facts about the machines"): of its
// CPU after the fork, about a quarter is the backend's start, a sixth the first query on cold
// caches, the rest its exit. /proc gives the total per dial but cannot tell these apart; they
// matter only for *when* the CPU is spent (before the first query, or after the close).
constexpr double share_backend_start = 0.25, share_cold_query = 0.15, share_exit = 0.60;
// The service's CPU per request split between accept + parse, the query (libpqxx), and encode +
// write: the request path holds a connection only during the middle part.
constexpr double share_parse = 0.35, share_query = 0.30, share_respond = 0.35;
// Priors used when no step dialed (per-dial CPU cannot be fitted): DESIGN.md's figures for a
// 2-vCPU VM of this kind (fork 2.5 ms of the postmaster's CPU, 43 ms for a connection's life).
constexpr double prior_fork_cpu = 0.0025, prior_connection_cpu = 0.043;
// A phase's delay is what is left of its measured mean once the model's own CPU on that path is
// taken out; never less than this share of the measured mean (CPU demands are fitted on other
// data and can exceed a short phase's mean by their own error).
constexpr double min_delay_share = 0.1;
// Requests a step needs for its query phase's tail to count (p99 is then the 3rd largest or
// beyond).
constexpr std::uint64_t min_tail_count = 300;
// Connections that must have ended in the steps before their CPU is taken as a connection's
// life (fewer would rest on a handful of backends, each of which may have served many queries).
constexpr double min_connections_ended = 10;

std::string fmt(double x, int digits = 3) {
  std::ostringstream os;
  os.precision(digits);
  os << x;
  return os.str();
}

// A delay from the phase that holds it and the CPU the model adds to it (a constant per
// request, `cpu`): the phase less that CPU, so it keeps the phase's spread. Not the phase scaled
// down to the delay's mean: that shrank the spread with it (the notebooks' query phase, 0.45 ms
// of which 0.33 ms CPU, kept a quarter of its 0.26 ms p99 - p50), and the model's own steps came
// back with their quiet p99 18 % short. `phase` is fitted above a floor of at most `cpu`
// (fit_phase): a family carries the floor as its shift, the empirical table the raw quantiles.
// Where some phases took less than the CPU (the floor below it), the part above the floor is
// scaled to the delay's mean, which keeps most of the spread.
distribution phase_less_cpu(distribution phase, double cpu) {
  if (phase.kind == distribution_kind::empirical) {
    for (double& v : phase.values) v = std::max(0.0, v + phase.shift - cpu);
    phase.shift = 0;
    return phase;
  }
  const double delay = phase.mean() - cpu;
  phase.shift -= cpu;
  if (phase.shift >= 0) return phase;
  phase.shift = 0;
  return delay > 0 && phase.mean() > 0 ? phase.scaled(delay / phase.mean()) : distribution::none();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The generator's CPU over the measured part: getrusage covers warm-up too.
double generator_cpu(const calibration_step& s) {
  const load_result& l = s.load;
  const double whole = l.duration + l.warmup;
  const double cpu = l.cpu_user + l.cpu_system;
  return whole > 0 ? cpu * l.duration / whole : cpu;
}

double requests_of(const calibration_step& s) {
  return s.service ? s.service->requests : static_cast<double>(s.load.completed);
}

json::object demand_report(const demand_fit& f) {
  json::array terms;
  for (const demand_term& t : f.terms) {
    json::object o{{"name", t.name},
                   {"unit", t.unit},
                   {"fitted", t.fitted},
                   {"clamped", t.clamped},
                   {"value", t.value}};
    o["standard_error"] = std::isfinite(t.standard_error) ? json::value(t.standard_error) : nullptr;
    if (!t.reason.empty()) o["reason"] = t.reason;
    terms.push_back(std::move(o));
  }
  json::array residuals;
  for (double r : f.residual) residuals.push_back(r);
  return {{"terms", std::move(terms)},
          {"r_squared", f.r_squared},
          {"rms_relative_residual", f.rms_relative_residual},
          {"residual_cpu_seconds", std::move(residuals)}};
}

json::object distribution_report(const distribution_fit& f) {
  json::array candidates;
  for (const family_fit& c : f.candidates)
    candidates.push_back({{"family", family_name(c.family)},
                          {"aic", c.aic},
                          {"ks", c.ks},
                          {"p50", c.p50_fitted},
                          {"p99", c.p99_fitted}});
  return {
      {"family", family_name(f.family)}, {"count", f.count}, {"p50_measured", f.p50_measured},
      {"p99_measured", f.p99_measured},  {"note", f.note},   {"candidates", std::move(candidates)}};
}

// A demand fit that degrades gracefully: all terms, then without the load-dependent and
// per-second terms (too few steps), else a plain ratio CPU / requests.
struct owner_fit {
  double per_request = 0, per_runnable = 0, per_second = 0, per_dial = 0;
  // The most runnable tasks any fitted step measured: the per-runnable cost is known up to there
  // and no further (the model holds it there; SCENARIO.md "cpu.per_runnable.max_runnable").
  double max_runnable = 0;
  bool dial_fitted = false;
  // CPU seconds the fit explains per step given, leaving out the per-runnable term (empty: ratio
  // only): what the speed factor is measured against (see "run-to-run variability" below).
  std::vector<double> explained;
  json::object report;
};

owner_fit fit_owner(const std::string& owner, const std::vector<demand_step>& steps,
                    std::vector<std::string>& not_fitted) {
  owner_fit out;
  for (int attempt = 0; attempt < 2; ++attempt) {
    demand_fit_options o;
    o.load_dependent = o.background = attempt == 0;
    try {
      demand_fit f = fit_cpu_demands(owner, steps, o);
      auto value = [&](const char* name) {
        for (const demand_term& t : f.terms)
          if (t.name == name && t.fitted) return t.value;
        return 0.0;
      };
      out.per_request = value("request");
      out.per_runnable = value("request_per_runnable");
      for (const demand_step& s : steps) out.max_runnable = std::max(out.max_runnable, s.runnable);
      for (std::size_t k = 0; k < steps.size(); ++k)
        out.explained.push_back(f.predicted[k] -
                                out.per_runnable * steps[k].requests * steps[k].runnable);
      out.per_second = value("background");
      out.per_dial = value("dial") + value("close");  // a close follows every dial
      for (const demand_term& t : f.terms)
        if ((t.name == "dial" || t.name == "close") && t.fitted) out.dial_fitted = true;
      for (const std::string& line : f.not_fitted) not_fitted.push_back(owner + " CPU: " + line);
      out.report = demand_report(f);
      if (out.per_runnable > 0) out.report["max_runnable"] = out.max_runnable;
      if (attempt == 1)
        not_fitted.push_back(owner + " CPU: the growth with load and the per-second floor (" +
                             std::to_string(steps.size()) + " steps are too few)");
      return out;
    } catch (const std::invalid_argument& e) {
      if (attempt == 1) {
        double cpu = 0, req = 0;
        for (const demand_step& s : steps) {
          cpu += s.cpu_seconds;
          req += s.requests;
        }
        out.per_request = req > 0 ? cpu / req : 0;
        out.report = {{"ratio", out.per_request}, {"why", e.what()}};
        not_fitted.push_back(owner + " CPU: only CPU / requests (" + e.what() + ")");
      }
    }
  }
  return out;
}

// A phase's distribution fitted, or when there is nothing to fit (every value the same, as a
// phase too short for the histogram's resolution), that one value.
struct phase_fit {
  distribution chosen;
  json::object report;
};
// `floor`: a known minimum taken out before the families are fitted (fit_distribution).
phase_fit fit_phase(const latency_histogram& h, double floor = 0) {
  try {
    distribution_fit_options o;
    o.floor = floor;
    distribution_fit f = fit_distribution(observations_from_histogram(h), o);
    return {f.chosen, distribution_report(f)};
  } catch (const std::invalid_argument& e) {
    const double m = h.mean();
    return {m > 0 ? distribution::deterministic(m) : distribution::none(),
            {{"family", "deterministic"}, {"mean", m}, {"note", e.what()}}};
  }
}

distribution exponential_or_none(double mean) {
  return mean > 0 ? distribution::exponential(mean) : distribution::none();
}

distribution deterministic_or_none(double mean) {
  return mean > 0 ? distribution::deterministic(mean) : distribution::none();
}

// The Server-Timing phase of a step, or nullptr if the service sent none.
const latency_histogram* phase_of(const calibration_step& s, const char* name) {
  auto it = s.load.phases.find(name);
  if (it == s.load.phases.end() || it->second.total_count() == 0) return nullptr;
  return &it->second;
}

// The mean of a phase over the requests that spent time in it (dial: the requests that
// dialed; the others report 0). The mean, as the CPU taken out of it is a mean.
double nonzero_mean(const latency_histogram& h, std::uint64_t& count) {
  latency_observations obs = observations_from_histogram(h);
  latency_observations kept;
  for (std::size_t i = 0; i < obs.value.size(); ++i)
    if (obs.lower[i] > 0) {
      kept.value.push_back(obs.value[i]);
      kept.weight.push_back(obs.weight[i]);
      kept.lower.push_back(obs.lower[i]);
      kept.upper.push_back(obs.upper[i]);
    }
  count = static_cast<std::uint64_t>(kept.total_weight());
  double sum = 0;
  for (std::size_t i = 0; i < kept.value.size(); ++i) sum += kept.value[i] * kept.weight[i];
  return count ? sum / kept.total_weight() : 0;
}

}  // namespace

scenario scenario_for_step(const scenario& fitted, const calibration_step& s) {
  scenario out = fitted;
  out.arrivals.rate = s.rate;
  if (s.pool) {
    out.pool.max_open = s.pool->max_open;
    out.pool.max_idle = s.pool->max_idle;
    out.pool.go = parse_go_version(s.pool->go_version);
  }
  if (fitted.client_connections > 0 && s.load.max_connections > 0)
    out.client_connections = s.load.max_connections;
  out.run.live_length = s.load.duration;
  out.run.live_warmup = s.load.warmup;
  return out;
}

calibration_fit fit_calibration(const std::vector<calibration_step>& all,
                                const calibration_fit_options& opt) {
  calibration_fit out;
  // Every step that measured something feeds the CPU fits: a step a guard stopped still measured
  // its CPU, dials and exits over its (shorter) window, and those are the steps that dial most.
  // Latencies, phases and the pool setting come from the steps that ran to their end.
  std::vector<const calibration_step*> cpu_steps, steps;
  for (const calibration_step& s : all) {
    if (std::find(opt.leave_out.begin(), opt.leave_out.end(), s.index) != opt.leave_out.end())
      continue;
    if (s.load.completed == 0 || !(s.window > 0)) continue;
    cpu_steps.push_back(&s);
    if (!s.stopped_early) steps.push_back(&s);
  }
  if (steps.empty()) throw std::invalid_argument("no usable step (each stopped early or empty)");
  const std::string label = opt.label.empty() ? steps.back()->label : opt.label;
  std::map<std::string, double> top_rate;  // each setting's highest rate
  for (const calibration_step* s : steps)
    top_rate[s->label] = std::max(top_rate[s->label], s->rate);
  auto dial_share = [](const calibration_step* s) {
    const double req = requests_of(*s);
    return s->service && req > 0 ? s->service->dials / req : 0.0;
  };
  // A quiet step, for the wake-up and the network's spread: evenly spaced arrivals (each request
  // finds the same idle gap, 1 / rate), few dials (a dial's milliseconds are no wake-up) and a
  // CPU mostly idle (no queueing in the latency): at 40 % of the cores busy, queueing adds a few
  // hundredths of a millisecond to a 0.5 ms request's p50.
  auto quiet = [&](const calibration_step* s) {
    if (s->load.arrivals != "uniform" || !(s->rate > 0)) return false;
    if (requests_of(*s) < 100 || dial_share(s) > 0.01) return false;
    return s->cpu && s->cpu->cores > 0 ? s->cpu->host_busy / s->window / s->cpu->cores <= 0.4
                                       : s->rate <= 0.5 * top_rate[s->label];
  };

  scenario& m = out.model;
  m.name = "calibrated: " + label;

  // ---- the machine -------------------------------------------------------------------------
  int cores = 0;
  for (const calibration_step* s : steps)
    if (s->cpu && s->cpu->cores > 0) cores = s->cpu->cores;
  if (cores == 0) {
    cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    out.assumptions.push_back("cores: " + std::to_string(cores) +
                              " (this machine's; the target's were not measured)");
  }
  m.cores = cores;

  // ---- CPU demands ---------------------------------------------------------------------------
  std::vector<demand_step> svc, db;
  std::vector<const calibration_step*> svc_from, db_from;  // the step of each row above
  double gen_cpu = 0, gen_req = 0, fork_cpu = 0, fork_dials = 0;
  std::vector<double> other_per_s;
  // A connection's life measured directly: the CPU of backends that ended in a step over how
  // many ended. Far sharper than a regression on dials when a pool dials
  // seldom, as Go's default does below its knee.
  // How many ended: the service's closes (a backend born and gone between two snapshots is in
  // its parent's CPU but in neither snapshot's process list, so /proc cannot count it).
  double ended_cpu = 0, ended = 0;
  for (const calibration_step* s : cpu_steps)
    if (s->cpu && s->service) {
      ended_cpu += s->cpu->connections_cpu;
      ended += s->service->closes;
    }
  const bool life_measured = ended >= min_connections_ended && ended_cpu > 0;
  for (const calibration_step* s : cpu_steps) {
    const double req = requests_of(*s);
    gen_cpu += generator_cpu(*s);
    gen_req += static_cast<double>(s->load.completed);
    if (!s->cpu) continue;
    demand_step d;
    d.window_seconds = s->window;
    d.requests = req;
    d.dials = s->service ? s->service->dials : 0;
    d.closes = s->service ? s->service->closes : 0;
    d.runnable = s->cpu->runnable;
    d.cpu_seconds = s->cpu->service;
    if (d.cpu_seconds > 0) {
      svc.push_back(d);
      svc_from.push_back(s);
    }
    d.cpu_seconds = s->cpu->database;
    if (life_measured) {
      // What is left once the measured connections' lives and the forks are taken out is the
      // queries' CPU on long-lived connections.
      d.cpu_seconds -= s->cpu->connections_cpu + s->cpu->postmaster;
      d.dials = d.closes = 0;
    }
    // A stopped step serves the connections' lives and the forks; its per-request CPU is a
    // dial storm's (each short-lived backend's one query went out with its exit), not the
    // queries' on long-lived connections that the regression is about.
    if (!s->stopped_early && d.cpu_seconds > 0) {
      db.push_back(d);
      db_from.push_back(s);
    }
    if (s->service && s->service->dials >= 5) {
      fork_cpu += s->cpu->postmaster;
      fork_dials += s->service->dials;
    }
    other_per_s.push_back(
        (s->cpu->host_busy - s->cpu->service - s->cpu->database -
         (s->cpu->generator_apart() ? 0 : generator_cpu(*s))) /
        s->window);
  }
  json::object demands;
  owner_fit fs, fd;
  if (!svc.empty()) {
    fs = fit_owner("service", svc, out.not_fitted);
    demands["service"] = fs.report;
  } else {
    // The service's own counter is the next best source; without it nothing is known.
    double cpu = 0, req = 0;
    for (const calibration_step* s : steps)
      if (s->service && s->service->cpu_seconds > 0) {
        cpu += s->service->cpu_seconds;
        req += requests_of(*s);
      }
    fs.per_request = req > 0 ? cpu / req : 0;
    out.not_fitted.push_back(req > 0 ? "service CPU: only process_cpu_seconds_total / requests "
                                       "(the target is not on this machine)"
                                     : "service CPU: no /proc and no process_cpu_seconds_total");
    demands["service"] = {{"ratio", fs.per_request}};
  }
  if (!db.empty()) {
    std::vector<std::string> lines;
    fd = fit_owner("database", db, lines);
    for (const std::string& l : lines)  // dials and closes were taken out on purpose
      if (!life_measured ||
          (l.find("dial cost") == std::string::npos && l.find("close cost") == std::string::npos))
        out.not_fitted.push_back(l);
    demands["database"] = fd.report;
  } else {
    out.not_fitted.push_back("database CPU: PostgreSQL is not on this machine (no /proc)");
  }
  const double gen_per_request = gen_req > 0 ? gen_cpu / gen_req : 0;
  demands["generator"] = {{"per_request", gen_per_request}};
  out.report["demands"] = std::move(demands);

  // A request's CPU is the same code on the same query every time: a constant, its variation
  // left to the crowding term and the run's speed. An exponential one (cv 1) put the model's
  // low-load p99 at twice the live one, and its queueing made the knees 15-30 % low
  // (bench/README.md, calibration accuracy of 2026-12-07: the query phase's own p99 is 1.8 x
  // its median, where an exponential CPU of that mean alone is 4.6 x). /proc gives totals, not
  // each request's CPU, so no shape is fitted. A connection's CPU (start, cold query, exit)
  // stays exponential: those vary with what the backend was doing.
  m.parse_cpu = deterministic_or_none(share_parse * fs.per_request);
  m.query_service_cpu = deterministic_or_none(share_query * fs.per_request);
  m.respond_cpu = deterministic_or_none(share_respond * fs.per_request);
  m.query_db_cpu = deterministic_or_none(fd.per_request);
  m.service_cpu_per_runnable = fs.per_runnable;
  m.database_cpu_per_runnable = fd.per_runnable;
  m.service_max_runnable = fs.per_runnable > 0 ? fs.max_runnable : 0;
  m.database_max_runnable = fd.per_runnable > 0 ? fd.max_runnable : 0;
  out.assumptions.push_back("a request's CPU is a constant (the same query every time; /proc "
                            "gives totals, not its spread)");
  out.assumptions.push_back("the service's CPU per request is split " + fmt(share_parse) +
                            " accept + parse, " + fmt(share_query) + " query, " +
                            fmt(share_respond) + " encode + write");
  // A generator on CPUs of its own (--target-cpus) shared none of the target's: the model then
  // has no generator CPU and no client station, as a deployment has none.
  bool generator_apart = false;
  for (const calibration_step* s : cpu_steps)
    if (s->cpu && s->cpu->generator_apart()) generator_apart = true;
  const bool no_generator = opt.exclude_generator || generator_apart;
  if (generator_apart)
    out.assumptions.push_back(
        "the generator ran on CPUs of its own (--target-cpus): no generator CPU and no client "
        "station in the model, as in a deployment");
  if (!no_generator) m.generator_cpu = deterministic_or_none(gen_per_request);

  // Dials: the postmaster's fork is measured alone; the rest of a connection's life is the
  // database's per-dial CPU minus the fork.
  double fork = fork_dials > 0 ? fork_cpu / fork_dials : 0;
  double life = life_measured ? fork + ended_cpu / ended + fs.per_dial
                              : (fd.dial_fitted ? fd.per_dial + fs.per_dial : 0);
  const bool fork_measured = fork_dials > 0 && fork_cpu > 0;
  const bool life_known = life_measured || fd.dial_fitted;
  std::string connection_from;
  if (opt.prior && !(fork_measured && life_known)) {
    const scenario& p = *opt.prior;
    if (!fork_measured) {
      fork = p.dial_fork.mean();
      out.assumptions.push_back("the postmaster's fork: " + fmt(fork * 1e3) +
                                " ms of CPU per dial, from the prior calibration " +
                                opt.prior_name + " (no step measured the postmaster's CPU)");
    }
    if (!life_known) {
      life = p.dial_fork.mean() + p.dial_cpu.mean() + p.query_cold_db_cpu.mean() +
             p.close_db_cpu.mean();
      out.assumptions.push_back("a connection's CPU: " + fmt(life * 1e3) +
                                " ms, from the prior calibration " + opt.prior_name +
                                " (no step dialed enough)");
    }
    life = std::max(life, fork);
    connection_from = "prior " + opt.prior_name;
  } else if (fork_dials == 0 || !life_known) {
    out.not_fitted.push_back(
        "connection CPU (fork, backend start, cold first query, exit): no step dialed enough "
        "(a pool that never closes connections shows no dials); using this machine kind's "
        "figures from DESIGN.md");
    fork = prior_fork_cpu;
    life = prior_connection_cpu;
  }
  const double rest = std::max(0.0, life - fork);
  m.dial_fork = distribution::deterministic(fork);
  m.dial_cpu = exponential_or_none(share_backend_start * rest);
  m.query_cold_db_cpu = exponential_or_none(share_cold_query * rest);
  m.close_db_cpu = exponential_or_none(share_exit * rest);
  out.assumptions.push_back("a connection's CPU after the fork is split " +
                            fmt(share_backend_start) + " backend start, " + fmt(share_cold_query) +
                            " cold first query, " + fmt(share_exit) + " exit (DESIGN.md)");
  out.report["connection"] = {
      {"fork_cpu", fork},
      {"life_cpu", life},
      {"dials_measured", fork_dials},
      {"connections_ended", ended},
      {"life_from", life_measured ? "ended backends' CPU (/proc)" : "least squares on dials"},
      {"prior", connection_from.empty() ? json::value(nullptr) : json::value(connection_from)},
      {"fitted", fork_dials > 0 && (life_measured || fd.dial_fitted)}};

  // Work on the host that is none of the three: other processes, and the service's and the
  // database's CPU per second whatever the rate.
  const double other = std::max(0.0, median(other_per_s));
  m.background_utilization =
      std::min(0.9, (other + fs.per_second + fd.per_second) / static_cast<double>(cores));
  out.report["background"] = {{"other_cpu_per_second", other},
                              {"service_cpu_per_second", fs.per_second},
                              {"database_cpu_per_second", fd.per_second},
                              {"utilization", m.background_utilization}};

  // ---- the wake-up of an idle host, from the p50 of quiet steps -------------------------------
  // The quiet steps (`quiet` above): each request finds the same idle gap, no queueing.
  {
    std::vector<wakeup_point> points;
    for (const calibration_step* s : steps) {
      const double p50 = s->load.latency_all.percentile(50);
      if (quiet(s) && p50 > 0) points.push_back({1 / s->rate, p50});
    }
    wakeup_fit w = fit_wakeup(points);
    // Its p50 here; its spread with the network's below.
    m.wakeup_delay = w.found ? distribution::deterministic(w.delay) : distribution::none();
    m.wakeup_idle = w.found ? w.idle : 0;
    if (!w.found && points.empty() && opt.prior && !opt.prior->wakeup_delay.is_zero()) {
      m.wakeup_delay = opt.prior->wakeup_delay;
      m.wakeup_idle = opt.prior->wakeup_idle;
      out.assumptions.push_back("the wake-up of an idle host: " + m.wakeup_delay.describe() +
                                " after " + fmt(1e3 * m.wakeup_idle) +
                                " ms idle, from the prior calibration " + opt.prior_name +
                                " (no step had evenly spaced arrivals)");
    }
    out.report["wakeup"] = {{"found", w.found},
                            {"delay", w.delay},
                            {"delay_standard_error", w.delay_standard_error},
                            {"idle", w.idle},
                            {"p50_awake", w.base},
                            {"rms", w.rms},
                            {"rms_without", w.rms_without},
                            {"steps", w.points},
                            {"rates", w.gaps},
                            {"measure",
                             "p50 of all requests at 1 / rate apart, steps with < 1 % "
                             "dials and <= 40 % of the cores busy"},
                            {"note", w.note}};
  }

  // ---- delays, from the step whose query phase is quickest -----------------------------------
  // Among steps that seldom dial (a fresh connection's cold first query would otherwise be taken
  // for the query's delay: every request dials with max_idle 0), the one with the smallest mean
  // query phase. The lowest rate is not it on a real machine: there the idle CPUs sleep and every
  // request pays their wake-up (the demo's steps: query p99 1.3-2.3 ms at 50 req/s, 0.8 ms at
  // 500-1,000), which no queue in the model explains away; at the quickest step the delay has the
  // least of wake-ups and queueing in it. The model's own steps (queueing only) give the lowest
  // rate, as before.
  // Best first: seldom dials, enough requests for a tail, the quickest query, the lowest rate.
  auto rank = [&](const calibration_step* s) {
    const latency_histogram& q = *phase_of(*s, "query");
    return std::make_tuple(dial_share(s) >= 0.05, q.total_count() < min_tail_count, q.mean(),
                           s->rate);
  };
  const calibration_step* low = nullptr;
  for (const calibration_step* s : steps)
    if (phase_of(*s, "query") && (!low || rank(s) < rank(low))) low = s;
  json::object phases;
  const double cpu_in_query = m.query_db_cpu.mean() + m.query_service_cpu.mean();
  if (low) {
    const latency_histogram& q = *phase_of(*low, "query");
    const double measured = q.mean();
    const double delay = std::max(measured - cpu_in_query, min_delay_share * measured);
    // The CPU below every measured phase (a microsecond under the quickest) is the families'
    // floor, so what they fit is the delay itself.
    const double cpu = measured - delay;
    phase_fit f = fit_phase(q, std::max(0.0, std::min(cpu, q.min() - 1e-6)));
    m.query_delay = phase_less_cpu(f.chosen, cpu);
    json::object qr = f.report;
    qr["measured_mean"] = measured;
    qr["delay_mean"] = delay;
    qr["rate"] = low->rate;
    phases["query"] = std::move(qr);
    if (const latency_histogram* r = phase_of(*low, "release"); r && r->max() > 0) {
      phase_fit rf = fit_phase(*r);
      m.release_delay = rf.chosen;
      phases["release"] = rf.report;
    }
    // The client's latency beyond the service's phases and CPU and the host's wake-up: the
    // network and the kernel. Its p50 from this step: the p50s' difference, less the wake-up's
    // p50 at this step's idle gap (fitted above; the model adds it to every request as well).
    static constexpr const char* inside_phases[] = {"queue", "wait", "query", "release"};
    const bool wakes = !m.wakeup_delay.is_zero() && m.wakeup_idle > 0;
    auto wake_share = [&](const calibration_step* s) {
      return wakes && s->rate > 0 ? std::min(1.0, 1 / s->rate / m.wakeup_idle) : 0.0;
    };
    double inside = m.parse_cpu.mean() + m.respond_cpu.mean() +
                    m.wakeup_delay.mean() * wake_share(low);  // the wake-up a constant so far
    for (const char* p : inside_phases)
      if (const latency_histogram* h = phase_of(*low, p)) inside += h->percentile(50);
    const double rtt = std::max(0.0, low->load.latency.percentile(50) - inside);
    // Its spread about that p50, and the wake-up's about its own, from the quiet steps. At
    // each quantile, the client's latency less its p50 (d), and the same for each phase (d_p);
    // what the phases leave, as if the parts were independent and each spread like a normal's,
    // d^2 - sum d_p^2 (exact for normals; for two exponentials the sum's p99 - p50 is 4.96
    // against 5.5 so, a little short for skewed parts, where subtracting the spreads would
    // leave nothing), split by fit_spread_split into the network's (every request's) and the
    // wake-up's (growing with the idle gap as the wake-up's p50 does). Not the median over the
    // quiet steps for the network alone (2026-12-07, 031a5b9): that put the idle machine's
    // spread on every request (bench run 9, fit_wakeup.hpp). Not the quickest step's own spread
    // (tried 2026-12-07, f0828a5): the step with the quickest query is a high rate's, whose
    // client tail holds the stalls, and that tail went onto every request on top of the stalls
    // fitted for it (bench run 7: p99 - p50 = 2.05 ms where the quiet steps' whole latency
    // spread 0.7-1.2 ms). Up to p99: past it the stalls take over.
    const std::vector<double> probs{0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99};
    const std::size_t at50 = 5;  // probs[5] is the p50: the tails either side
    std::vector<std::vector<spread_point>> points(probs.size());
    for (const calibration_step* s : steps) {
      if (!quiet(s) || s->load.latency.total_count() < min_tail_count) continue;
      if (!phase_of(*s, "query")) continue;
      const double share = wake_share(s);
      const double client50 = s->load.latency.percentile(50);
      for (std::size_t i = 0; i < probs.size(); ++i) {
        const double pct = std::max(0.1, 100 * probs[i]);  // the lowest bin for p0
        const double d = s->load.latency.percentile(pct) - client50;
        double parts = 0;
        for (const char* p : inside_phases)
          if (const latency_histogram* h = phase_of(*s, p))
            parts += std::pow(h->percentile(pct) - h->percentile(50), 2);
        points[i].push_back({share * share, std::max(0.0, d * d - parts)});
      }
    }
    const std::size_t quiet_steps = points[0].size();
    // A quantile table about a p50 from the spreads either side of it, made monotone.
    auto table = [&](double p50, const std::vector<double>& spread) {
      std::vector<double> v(probs.size());
      for (std::size_t i = 0; i < probs.size(); ++i)
        v[i] = std::max(0.0, i < at50 ? p50 - spread[i] : p50 + spread[i]);
      for (std::size_t i = at50 + 1; i < probs.size(); ++i) v[i] = std::max(v[i], v[i - 1]);
      for (std::size_t i = at50; i-- > 0;) v[i] = std::min(v[i], v[i + 1]);
      return v;
    };
    auto as_distribution = [&](const std::vector<double>& v) {
      if (v.back() == v.front())
        return v[at50] > 0 ? distribution::deterministic(v[at50]) : distribution::none();
      std::vector<double> table_probs = probs, table_values = v;
      table_probs.push_back(1);
      table_values.push_back(v.back());
      return distribution::quantile_table(table_probs, table_values);
    };
    std::vector<double> net_spread(probs.size()), wake_spread(probs.size());
    for (std::size_t i = 0; quiet_steps > 0 && i < probs.size(); ++i) {
      const spread_split split = fit_spread_split(points[i]);
      net_spread[i] = std::sqrt(split.constant);
      wake_spread[i] = std::sqrt(split.growing);
    }
    const std::vector<double> values = table(rtt, net_spread);
    m.network_rtt = as_distribution(values);
    json::object wake_report;
    if (wakes && quiet_steps > 0) {
      const double p50 = m.wakeup_delay.mean();  // a constant so far: fit_wakeup's p50
      const std::vector<double> w = table(p50, wake_spread);
      m.wakeup_delay = as_distribution(w);
      wake_report = {{"p50", p50}, {"p99", w.back()}, {"mean", m.wakeup_delay.mean()}};
    }
    phases["network_rtt"] = rtt;
    phases["network"] = {
        {"p50", rtt},
        {"p99", values.back()},
        {"mean", m.network_rtt.mean()},
        {"quiet_steps", quiet_steps},
        {"from", quiet_steps > 0 ? "p50 at this step; spread about it from the quiet steps, "
                                   "the part that does not grow with the idle gap"
                                 : "p50 at this step (no quiet step: no spread)"}};
    if (!wake_report.empty()) {
      wake_report["from"] =
          "p50 from the steps' p50 (fit.wakeup); spread about it from the "
          "quiet steps, the part that grows with the idle gap";
      phases["wakeup"] = std::move(wake_report);
    }
  } else {
    // End to end only: the whole latency at the lowest load becomes the query's delay.
    for (const calibration_step* s : steps)
      if (!low || s->rate < low->rate) low = s;
    const latency_histogram& e2e = low->load.latency;
    const double measured = e2e.mean();
    const double on_cpu = cpu_in_query + m.parse_cpu.mean() + m.respond_cpu.mean();
    const double delay = std::max(measured - on_cpu, min_delay_share * measured);
    const double cpu = measured - delay;
    phase_fit f = fit_phase(e2e, std::max(0.0, std::min(cpu, e2e.min() - 1e-6)));
    m.query_delay = phase_less_cpu(f.chosen, cpu);
    phases["end_to_end"] = f.report;
    out.not_fitted.push_back(
        "phases: the service sends no Server-Timing; the whole latency at the lowest load is "
        "taken as the query's delay");
  }
  // Whether a step met the SLO, for the dial's delay and the stalls: the SLO's quantile and
  // latency, or without an SLO p99 within 1 s (a run past it has fallen over for any SLO this
  // tool plans for).
  const double slo_q = opt.slo_latency > 0 ? opt.slo_quantile : 0.99;
  const double slo_l = opt.slo_latency > 0 ? opt.slo_latency : 1.0;
  // The dial's round trips: a dial's mean time minus the CPU the model puts on it, at the step
  // (20 dials or more) whose dials were quickest. A dial's time holds its waits for the CPU and
  // the postmaster too, which the model makes itself; the lowest rate that dialed is often a
  // burst's (calibration_accuracy run 6: dials of 31 ms on average at 839 req/s, the repeat
  // with a p99 of 19 ms, against 8-10 ms at the repeats without), and its mean taken as pure
  // delay put 27 ms on every dial and a p99 of 34 ms at 773 req/s where live measured 2.4.
  // Only steps within the SLO: a storm's dials wait behind the storm's
  // own forks (run 8: the only steps with 20 dials were two storms, whose 0.78 s dials became
  // 0.77 s of delay on every dial). With no such step of 20 dials, the dials of every step
  // within the SLO are pooled (5 or more).
  auto within_slo = [&](const calibration_step* s) {
    return !s->stopped_early && s->load.latency_all.percentile(100 * slo_q) <= slo_l;
  };
  double dial_mean = 0, dial_rate = 0, pooled_sum = 0;
  std::uint64_t pooled_n = 0;
  for (const calibration_step* s : steps) {
    const latency_histogram* h = phase_of(*s, "dial");
    if (!h || !within_slo(s)) continue;
    std::uint64_t n = 0;
    double mean = nonzero_mean(*h, n);
    pooled_sum += mean * static_cast<double>(n);
    pooled_n += n;
    if (n >= 20 && (dial_rate == 0 || mean < dial_mean)) {
      dial_mean = mean;
      dial_rate = s->rate;
    }
  }
  std::string dial_from = "the step with 20 dials or more whose dials were quickest";
  const bool pooled = dial_rate == 0 && pooled_n >= 5;
  if (pooled) {
    dial_mean = pooled_sum / static_cast<double>(pooled_n);
    dial_from = "the " + std::to_string(pooled_n) + " dials of the steps within the SLO, pooled";
  }
  if (dial_rate > 0 || pooled) {
    const double d = std::max(0.0, dial_mean - m.dial_fork.mean() - m.dial_cpu.mean());
    m.dial_delay = d > 0 ? distribution::deterministic(d) : distribution::none();
    phases["dial"] = {{"mean", dial_mean},
                      {"rate", dial_rate > 0 ? json::value(dial_rate) : json::value(nullptr)},
                      {"delay", d},
                      {"from", dial_from}};
  } else {
    out.not_fitted.push_back(
        "dial round trips: no step within the SLO had 20 dials, nor all of them together 5");
  }
  out.report["phases"] = std::move(phases);

  // ---- the pool, the client, the runs -------------------------------------------------------
  const calibration_step* ref = nullptr;
  for (const calibration_step* s : steps)
    if (s->label == label && (!ref || s->rate > ref->rate)) ref = s;
  if (!ref) throw std::invalid_argument("no usable step with label '" + label + "'");
  m.workers = service_defaults::workers;
  m.wait_timeout = service_defaults::wait_timeout;
  if (ref->pool) {
    m.pool.max_open = ref->pool->max_open;
    m.pool.max_idle = ref->pool->max_idle;
    m.pool.go = parse_go_version(ref->pool->go_version);
    if (ref->pool->waiter_order != to_string(effective_waiter_order(m.pool)))
      m.pool.order = parse_waiter_order(ref->pool->waiter_order);
  } else {
    out.not_fitted.push_back(
        "pool setting: the service has no /metrics; Go's defaults assumed (give --max-open and "
        "--max-idle to predict)");
  }
  out.assumptions.push_back("workers " + std::to_string(m.workers) + " and wait timeout " +
                            fmt(m.wait_timeout) + " s: headroom-service's defaults");
  m.arrivals.process =
      ref->load.arrivals == "poisson" ? arrival_process::poisson : arrival_process::constant;
  m.arrivals.rate = ref->rate;
  if (!no_generator) m.client_connections = ref->load.max_connections;
  m.run.live_length = ref->load.duration;
  m.run.live_warmup = ref->load.warmup;
  m.run.slo_quantile = opt.slo_quantile;
  m.run.slo_latency = opt.slo_latency;

  // ---- run-to-run variability ------------------------------------------------------------
  // The speed factor is measured on each step's CPU (service + database, as fitted) over the CPU
  // the demand fit gives it for its requests, dials, closes and seconds. Raw CPU per request
  // counted twice what the model already reproduces: a repeat that dialed a few more
  // connections (tens of ms of CPU each) looked like a slower machine. The per-runnable term is
  // left in the measure: on a slower run more tasks are runnable, so that term can absorb part
  // of the speed's spread (it did on the model's own data: a cost found where there was none,
  // and sigma a third low), while counting crowding in both is bounded (max_runnable).
  std::map<const calibration_step*, std::pair<double, double>> explained;  // measured, fitted
  auto add_explained = [&](const std::vector<demand_step>& rows,
                           const std::vector<const calibration_step*>& from,
                           const std::vector<double>& fitted) {
    if (fitted.size() != rows.size()) return;
    for (std::size_t k = 0; k < rows.size(); ++k) {
      explained[from[k]].first += rows[k].cpu_seconds;
      explained[from[k]].second += fitted[k];
    }
  };
  add_explained(svc, svc_from, fs.explained);
  add_explained(db, db_from, fd.explained);
  const bool residual_speed = !fs.explained.empty() && !fd.explained.empty();
  std::map<std::pair<std::string, double>, std::vector<double>> repeats;
  for (const calibration_step* s : steps) {
    const double req = requests_of(*s);
    if (residual_speed) {
      auto it = explained.find(s);
      if (it != explained.end() && it->second.first > 0 && it->second.second > 0)
        repeats[{s->label, s->rate}].push_back(it->second.first / it->second.second);
    } else if (s->cpu && req > 0 && s->cpu->service + s->cpu->database > 0) {
      repeats[{s->label, s->rate}].push_back((s->cpu->service + s->cpu->database) / req);
    }
  }
  std::vector<std::vector<double>> groups;
  for (auto& [key, v] : repeats)
    if (v.size() >= 2) groups.push_back(v);
  if (!groups.empty()) {
    variability_fit v = fit_speed_factor(groups);
    m.speed_sigma = v.sigma;
    m.speed_sigma_dof = v.degrees_of_freedom;
    out.report["variability"] = {
        {"speed_sigma", v.sigma},
        {"sigma_low", v.sigma_low},
        {"sigma_high", v.sigma_high},
        {"confidence", v.confidence},
        {"degrees_of_freedom", v.degrees_of_freedom},
        {"measure", residual_speed ? "CPU (service + database) over what the demand fit explains "
                                     "by requests, dials, closes and seconds"
                                   : "CPU per request, service + database"},
        {"note", v.note}};
  } else if (opt.prior) {
    m.speed_sigma = opt.prior->speed_sigma;
    m.speed_sigma_dof = opt.prior->speed_sigma_dof;
    out.report["variability"] = {{"speed_sigma", m.speed_sigma},
                                 {"from", "prior " + opt.prior_name}};
    out.assumptions.push_back("run-to-run variability of speed: sigma " + fmt(m.speed_sigma) +
                              " from the prior calibration " + opt.prior_name +
                              " (no step was measured twice)");
  } else {
    out.not_fitted.push_back(
        "run-to-run variability: no step was measured twice with /proc CPU (use --repeats 2 or "
        "more on the machine that runs the service)");
  }

  // The tail's run-to-run spread at low load, where p99 is delays rather than queueing: the
  // p99 (all requests) of repeats of the same step, at rates up to half the run's highest.
  std::map<std::pair<std::string, double>, std::vector<double>> tails;
  for (const calibration_step* s : steps) {
    const double p99 = s->load.latency_all.percentile(99);
    if (s->rate <= 0.5 * top_rate[s->label] && p99 > 0) tails[{s->label, s->rate}].push_back(p99);
  }
  std::vector<std::vector<double>> tail_groups;
  for (auto& [key, v] : tails)
    if (v.size() >= 2) tail_groups.push_back(v);
  if (!tail_groups.empty()) {
    variability_fit v = fit_speed_factor(tail_groups);
    m.delay_sigma = std::min(v.sigma, 1.5);
    m.delay_sigma_dof = v.degrees_of_freedom;
    out.report["tail_variability"] = {
        {"delay_sigma", v.sigma},
        {"sigma_low", v.sigma_low},
        {"sigma_high", v.sigma_high},
        {"confidence", v.confidence},
        {"degrees_of_freedom", v.degrees_of_freedom},
        {"measure", "p99 of all requests, steps at <= half the top rate"},
        {"note", v.note}};
  } else if (opt.prior) {
    m.delay_sigma = opt.prior->delay_sigma;
    m.delay_sigma_dof = opt.prior->delay_sigma_dof;
    out.report["tail_variability"] = {{"delay_sigma", m.delay_sigma},
                                      {"from", "prior " + opt.prior_name}};
    out.assumptions.push_back("run-to-run variability of the tail: sigma " + fmt(m.delay_sigma) +
                              " from the prior calibration " + opt.prior_name +
                              " (no low-load step was measured twice)");
  } else {
    out.not_fitted.push_back(
        "run-to-run variability of the tail: no low-load step was measured twice (--repeats 2)");
  }

  // ---- stalls of the intake, last: simulated with everything above ---------------------------
  if (opt.fit_stalls) {
    std::vector<const calibration_step*> stopped;
    for (const calibration_step* s : cpu_steps)
      if (s->stopped_early && s->stop_reason != "interrupted") stopped.push_back(s);
    stall_fit_options so;
    so.runs_per_step = opt.stall_runs;
    // The regime a user asks about: within the SLO or not (slo_q, slo_l above).
    so.slo_quantile = slo_q;
    so.slo_latency = slo_l;
    stall_fit st = fit_stalls(m, steps, stopped, so);
    m.stall_rate = st.rate;
    m.stall_per_request = st.per_request;
    m.stall_length = st.length;
    out.report["stalls"] = std::move(st.report);
  }

  json::array nf, as;
  for (const std::string& s : out.not_fitted) nf.push_back(json::value(s));
  for (const std::string& s : out.assumptions) as.push_back(json::value(s));
  out.report["not_fitted"] = std::move(nf);
  out.report["assumptions"] = std::move(as);
  out.report["steps_used"] = steps.size();
  return out;
}

}  // namespace headroom::calibrate
