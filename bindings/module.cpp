// The Python module `headroom._headroom`: the C++ libraries bound with pybind11, nothing more.
// Scenarios go in and out as the JSON of model/SCENARIO.md (a dict), overrides use the CLI's
// rules (model/scenario/scenario_overrides.hpp), results are the CLI's JSON (to_dict) plus typed
// views and numpy arrays. The GIL is released while the model runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <boost/json.hpp>
#include <cmath>
#include <limits>
#include <optional>
#include <sstream>
#include <string>

#include "duration.hpp"
#include "prediction.hpp"
#include "prediction_report.hpp"
#include "scenario_json.hpp"
#include "plan.hpp"
#include "plan_report.hpp"
#include "scenario_overrides.hpp"
#include "slo.hpp"
#include "sweep.hpp"
#include "sweep_report.hpp"

namespace py = pybind11;
namespace json = boost::json;

namespace headroom::python {
namespace {

// --- JSON <-> Python -------------------------------------------------------------------------

py::object to_python(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return py::none();
    case json::kind::bool_: return py::bool_(v.get_bool());
    case json::kind::int64: return py::int_(v.get_int64());
    case json::kind::uint64: return py::int_(v.get_uint64());
    case json::kind::double_: return py::float_(v.get_double());
    case json::kind::string: return py::str(std::string(v.get_string()));
    case json::kind::array: {
      py::list l;
      for (const json::value& x : v.get_array()) l.append(to_python(x));
      return l;
    }
    case json::kind::object: {
      py::dict d;
      for (const auto& kv : v.get_object()) d[py::str(std::string(kv.key()))] = to_python(kv.value());
      return d;
    }
  }
  return py::none();
}

json::value from_python(const py::handle& o, const std::string& where) {
  if (o.is_none()) return nullptr;
  if (py::isinstance<py::bool_>(o)) return o.cast<bool>();
  if (py::isinstance<py::int_>(o)) return o.cast<std::int64_t>();
  if (py::isinstance<py::float_>(o)) return o.cast<double>();
  if (py::isinstance<py::str>(o)) return json::string(o.cast<std::string>());
  if (py::isinstance<py::dict>(o)) {
    json::object obj;
    for (auto kv : o.cast<py::dict>()) {
      const std::string key = py::str(kv.first).cast<std::string>();
      obj[key] = from_python(kv.second, where.empty() ? key : where + "." + key);
    }
    return obj;
  }
  if (py::isinstance<py::list>(o) || py::isinstance<py::tuple>(o)) {
    json::array arr;
    std::size_t i = 0;
    for (auto x : o) arr.push_back(from_python(x, where + "[" + std::to_string(i++) + "]"));
    return arr;
  }
  // numpy scalars and anything else float() accepts
  if (py::hasattr(o, "__float__")) return py::float_(py::reinterpret_borrow<py::object>(o)).cast<double>();
  throw scenario_error((where.empty() ? std::string("scenario") : where) + ": cannot be stored in a scenario (" +
                       py::str(py::type::of(o)).cast<std::string>() + ")");
}

// One keyword's value as T, or ScenarioError naming the flag as the CLI would.
template <class T>
T arg(const py::object& v, const std::string& key, const char* expected) {
  // bool is an int in Python; a flag never takes True for a count or a rate
  if (!py::isinstance<py::bool_>(v)) {
    try {
      return v.cast<T>();
    } catch (const py::cast_error&) {
    }
  }
  std::string flag = key;
  for (char& c : flag)
    if (c == '_') c = '-';
  throw scenario_error("--" + flag + ": expected " + expected + ", not " +
                       py::repr(v).cast<std::string>());
}

// A duration given as seconds (a number) or as text with a unit ("250ms"), as on the CLI.
std::optional<double> duration_arg(const py::object& o, const char* name) {
  if (o.is_none()) return std::nullopt;
  if (py::isinstance<py::str>(o)) {
    try {
      return parse_duration(o.cast<std::string>());
    } catch (const std::invalid_argument& e) {
      throw scenario_error(std::string("--") + name + ": " + e.what());
    }
  }
  return arg<double>(o, std::string(name), "seconds or a duration such as '250ms'");
}

// --- Scenario -------------------------------------------------------------------------------

struct py_scenario {
  scenario s;
};

py_scenario load(const std::string& path) { return {load_scenario_file(path)}; }

py_scenario from_dict(const py::dict& d) { return {scenario_from_json(from_python(d, ""))}; }

// keyword overrides, named as the CLI's flags (snake case)
scenario_overrides overrides_from_kwargs(const py::kwargs& kw) {
  scenario_overrides o;
  for (auto item : kw) {
    const std::string k = py::str(item.first).cast<std::string>();
    const py::object v = py::reinterpret_borrow<py::object>(item.second);
    if (v.is_none()) continue;
    if (k == "rate") o.rate = arg<double>(v, k, "a number (requests/s)");
    else if (k == "cores") o.cores = arg<double>(v, k, "a number (cores)");
    else if (k == "max_open") o.max_open = arg<int>(v, k, "an integer");
    else if (k == "max_idle") o.max_idle = arg<int>(v, k, "an integer");
    else if (k == "workers") o.workers = arg<int>(v, k, "an integer");
    else if (k == "threads") o.threads = arg<int>(v, k, "an integer");
    else if (k == "requests") o.requests = arg<std::uint64_t>(v, k, "a non-negative integer");
    else if (k == "seed") o.seed = arg<std::uint64_t>(v, k, "a non-negative integer");
    else if (k == "precision") o.precision = arg<double>(v, k, "a fraction");
    else if (k == "wait_timeout") o.wait_timeout = duration_arg(v, "wait-timeout");
    else if (k == "run_length") o.run_length = duration_arg(v, "run-length");
    else if (k == "run_warmup") o.run_warmup = duration_arg(v, "run-warmup");
    else if (k == "instances") o.instances = arg<int>(v, k, "an integer");
    else if (k == "service_cores") o.service_cores = arg<double>(v, "service_cores", "a number (cores)");
    else if (k == "db_cores") o.database_cores = arg<double>(v, "db_cores", "a number (cores)");
    else if (k == "db_rtt") o.database_rtt = duration_arg(v, "db-rtt");
    else if (k == "db_max_connections") o.database_max_connections = arg<int>(v, k, "an integer");
    else if (k == "slo") o.slo = arg<std::string>(v, k, "text");
    else if (k == "go_version") o.go_version = arg<std::string>(v, k, "text");
    else if (k == "waiter_order") o.waiter_order = arg<std::string>(v, k, "text");
    else
      throw scenario_error(k + ": not an override (rate, cores, max_open, max_idle, workers, threads, "
                               "requests, seed, precision, wait_timeout, run_length, run_warmup, slo, "
                               "go_version, waiter_order, instances, service_cores, db_cores, db_rtt, "
                               "db_max_connections)");
  }
  return o;
}

py_scenario with_overrides(const py_scenario& base, const py::kwargs& kw) {
  py_scenario c = base;
  apply_overrides(c.s, overrides_from_kwargs(kw));
  return c;
}

// --- Results --------------------------------------------------------------------------------

struct py_estimate {
  double value = 0, low = 0, high = 0;
  bool has_interval = false;
};

py_estimate view(const estimate& e) { return {e.value, e.ci_low, e.ci_high, e.has_ci}; }

struct py_prediction {
  scenario s;
  prediction p;
};

py_prediction run_prediction(const scenario& s) {
  validate(s);
  require_rate(s);
  py_prediction r{s, {}};
  {
    py::gil_scoped_release nogil;
    r.p = predict(s);
  }
  return r;
}

py::object latency_of(const py_prediction& r, const latency_estimate& l, const std::string& q) {
  if (!r.p.stable || r.p.replications == 0) return py::none();  // never p99 = 0 for "fell over"
  if (q == "mean") return py::cast(view(l.mean));
  if (q == "p50") return py::cast(view(l.p50));
  if (q == "p90") return py::cast(view(l.p90));
  if (q == "p95") return py::cast(view(l.p95));
  if (q == "p99") return py::cast(view(l.p99));
  if (q == "p99.9") return py::cast(view(l.p999));
  throw py::key_error(q + ": one of mean, p50, p90, p95, p99, p99.9");
}

py::dict live_of(const py_prediction& r) {
  const live_run_estimate& l = r.p.live;
  py::dict d;
  if (!l.computed) return d;
  auto finite = [](double x) -> py::object { return std::isfinite(x) ? py::object(py::float_(x)) : py::none(); };
  d["length"] = l.length;
  d["warmup"] = l.warmup;
  d["runs"] = l.runs;
  d["quantile"] = l.quantile;
  d["low"] = finite(l.low);
  d["median"] = finite(l.median);
  d["high"] = finite(l.high);
  d["p_stable"] = l.p_stable;
  d["p_slo"] = l.p_slo < 0 ? py::object(py::none()) : py::object(py::float_(l.p_slo));
  d["throughput_low"] = l.throughput_low;
  d["throughput_median"] = l.throughput_median;
  d["throughput_high"] = l.throughput_high;
  d["late_fraction"] = l.late_fraction;
  return d;
}

// --- Sweep -----------------------------------------------------------------------------------

template <class T>
std::vector<T> list_arg(const py::object& o, const char* name, const char* expected) {
  std::vector<T> out;
  if (o.is_none()) return out;
  if (py::isinstance<py::str>(o) || !py::isinstance<py::iterable>(o))
    return {arg<T>(o, name, expected)};  // one value: a grid of one
  for (auto x : o) out.push_back(arg<T>(py::reinterpret_borrow<py::object>(x), name, expected));
  return out;
}

sweep_grid grid_of(const py::object& rates, const py::object& max_open, const py::object& max_idle,
                   const py::object& cores) {
  sweep_grid g;
  g.rates = list_arg<double>(rates, "rates", "a number or a list of numbers (requests/s)");
  g.max_open = list_arg<int>(max_open, "max_open", "an integer or a list of integers");
  g.max_idle = list_arg<int>(max_idle, "max_idle", "an integer or a list of integers");
  g.cores = list_arg<double>(cores, "cores", "a number or a list of numbers");
  return g;
}

py::dict point_dict(const sweep_point& p) {
  py::dict d;
  d["index"] = p.index;
  d["rate"] = p.rate;
  d["max_open"] = p.max_open;
  d["max_idle"] = p.max_idle;
  d["cores"] = p.cores;
  return d;
}

sweep_point point_of(const py::dict& d) {
  sweep_point p;
  p.index = d["index"].cast<std::size_t>();
  p.rate = d["rate"].cast<double>();
  p.max_open = d["max_open"].cast<int>();
  p.max_idle = d["max_idle"].cast<int>();
  p.cores = d["cores"].cast<double>();
  return p;
}

// The rows of `headroom sweep --json` ("points"), one per result, in grid order.
py::list rows_of(const scenario& base, const std::vector<sweep_result>& results) {
  return to_python(sweep_to_json(base, results).at("points"));
}

py::list run_sweep_local(const py_scenario& base, const py::object& rates, const py::object& max_open,
                         const py::object& max_idle, const py::object& cores, int threads,
                         const py::object& progress) {
  sweep_grid g = grid_of(rates, max_open, max_idle, cores);
  sweep_options opt;
  opt.threads = threads;
  if (!progress.is_none())
    opt.progress = [progress](const sweep_progress& pr) {
      py::gil_scoped_acquire gil;
      progress(pr.done, pr.total, pr.elapsed, pr.eta);
    };
  std::vector<sweep_result> results;
  {
    py::gil_scoped_release nogil;
    results = run_sweep(base.s, g, opt);
  }
  return rows_of(base.s, results);
}

// --- Plan ------------------------------------------------------------------------------------

struct py_plan {
  plan p;
};

py_plan run_plan(const py_scenario& base, double target_rps, const std::string& slo, const py::kwargs& kw) {
  plan_request r;
  r.target_rps = target_rps;
  r.slo = slo_flag(slo);
  py::kwargs rest;
  py::object progress = py::none();
  for (auto item : kw) {
    const std::string k = py::str(item.first).cast<std::string>();
    const py::object v = py::reinterpret_borrow<py::object>(item.second);
    if (k == "confidence") r.confidence = arg<double>(v, k, "a fraction in (0, 1)");
    else if (k == "redundancy") r.redundancy = arg<int>(v, k, "an integer");
    else if (k == "zones") r.zones = arg<int>(v, k, "an integer");
    else if (k == "survive_zone_loss") r.survive_zone_loss = v.cast<bool>();
    else if (k == "window") r.window = *duration_arg(v, "window");
    else if (k == "window_warmup") r.window_warmup = *duration_arg(v, "window-warmup");
    else if (k == "runs") r.runs = arg<int>(v, k, "an integer");
    else if (k == "plan_precision") r.precision = arg<double>(v, "precision", "a fraction");
    else if (k == "optimize_pool") r.optimize_pool = v.cast<bool>();
    else if (k == "exclude_generator") r.exclude_generator = v.cast<bool>();
    else if (k == "db_max_connections") r.database_max_connections = arg<int>(v, k, "an integer");
    else if (k == "service_cores" && !v.is_none()) r.service_cores = arg<double>(v, "cores", "a number (cores)");
    else if (k == "db_cores" && !v.is_none()) r.database_cores = arg<double>(v, k, "a number (cores)");
    else if (k == "db_rtt" && !v.is_none()) r.database_rtt = duration_arg(v, "db-rtt");
    else if (k == "progress") progress = v;
    else rest[item.first] = item.second;  // the scenario overrides (max_open, seed, ...)
  }
  scenario s = base.s;
  apply_overrides(s, overrides_from_kwargs(rest));
  if (!progress.is_none())
    r.progress = [progress](const std::string& line) {
      py::gil_scoped_acquire gil;
      progress(line);
    };
  py_plan out;
  {
    py::gil_scoped_release nogil;
    out.p = make_plan(s, r);
  }
  return out;
}

}  // namespace
}  // namespace headroom::python

PYBIND11_MODULE(_headroom, m) {
  using namespace headroom;
  using namespace headroom::python;
  m.doc() = "Headroom's C++ model bound for Python (use the `headroom` package, not this module).";

  py::register_exception<scenario_error>(m, "ScenarioError", PyExc_ValueError);

  py::class_<py_estimate>(m, "Estimate",
                          "A figure and its confidence interval (seconds for latencies).")
      .def_readonly("value", &py_estimate::value, "The estimate.")
      .def_readonly("low", &py_estimate::low, "Lower end of the confidence interval.")
      .def_readonly("high", &py_estimate::high, "Upper end of the confidence interval.")
      .def_readonly("has_interval", &py_estimate::has_interval,
                    "False when too few replications gave an interval (low = high = 0).")
      .def("to_dict", [](const py_estimate& e) {
        py::dict d;
        d["value"] = e.value;
        d["low"] = e.has_interval ? py::object(py::float_(e.low)) : py::none();
        d["high"] = e.has_interval ? py::object(py::float_(e.high)) : py::none();
        return d;
      }, "As a dict: value, low, high (None without an interval).")
      .def("__repr__", [](const py_estimate& e) {
        std::ostringstream s;
        s << "Estimate(" << e.value;
        if (e.has_interval) s << ", [" << e.low << ", " << e.high << "]";
        return s.str() + ")";
      });

  py::class_<py_scenario>(m, "Scenario",
                          "A scenario or calibration (model/SCENARIO.md): what the model simulates.")
      .def(py::init(&from_dict), py::arg("fields"),
           "From a dict in the JSON form of model/SCENARIO.md (ScenarioError names a bad field).")
      .def_static("load", &load, py::arg("path"),
                  "Reads a scenario or calibration file (ScenarioError for a bad or foreign file).")
      .def("to_dict", [](const py_scenario& s) { return to_python(scenario_to_json(s.s)); },
           "The scenario as a dict (the JSON a file would hold).")
      .def("with_overrides", &with_overrides,
           "A copy with the CLI's overrides applied, named as `headroom predict`'s flags: rate, "
           "cores, max_open, max_idle, workers, threads, requests, seed, precision, wait_timeout, "
           "run_length, run_warmup (seconds or text such as '250ms'), slo ('p99=60ms'), "
           "go_version, waiter_order, and the deployment: instances, service_cores, db_cores, "
           "db_rtt, db_max_connections.")
      .def_property_readonly("rate", [](const py_scenario& s) { return offered_rate(s.s); },
                             "Offered requests per second.")
      .def("__repr__", [](const py_scenario& s) {
        std::ostringstream o;
        o << "Scenario(" << (s.s.name.empty() ? "unnamed" : s.s.name) << ", rate=" << offered_rate(s.s)
          << ", max_open=" << s.s.pool.max_open << ", max_idle=" << s.s.pool.max_idle << ")";
        return o.str();
      });

  py::class_<py_prediction>(m, "Prediction",
                            "What the model predicts for one scenario (headroom predict). Latencies in "
                            "seconds, rates per second, utilisations as fractions.")
      .def_property_readonly("stable", [](const py_prediction& r) { return r.p.stable; },
                             "False when the offered load cannot be served (percentiles are then None).")
      .def_property_readonly("reason", [](const py_prediction& r) { return r.p.reason; },
                             "Why it is not stable ('' when stable).")
      .def_property_readonly("replications", [](const py_prediction& r) { return r.p.replications; })
      .def("latency", [](const py_prediction& r, const std::string& q) { return latency_of(r, r.p.phases[phase_total], q); },
           py::arg("percentile"),
           "Successful requests' latency at 'mean', 'p50', 'p90', 'p95', 'p99' or 'p99.9': an "
           "Estimate, or None when unstable.")
      .def("latency_all", [](const py_prediction& r, const std::string& q) { return latency_of(r, r.p.all_requests, q); },
           py::arg("percentile"), "As latency(), over every request (failed ones at their deadline).")
      .def("phase", [](const py_prediction& r, const std::string& name, const std::string& q) {
             for (int i = 0; i < phase_count; ++i)
               if (name == phase_name(i)) return latency_of(r, r.p.phases[i], q);
             throw py::key_error(name + ": one of queue, wait, dial, query, release, total");
           }, py::arg("name"), py::arg("percentile"), "One phase's latency (queue, wait, dial, query, release, total).")
      .def_property_readonly("p50", [](const py_prediction& r) { return latency_of(r, r.p.phases[phase_total], "p50"); })
      .def_property_readonly("p99", [](const py_prediction& r) { return latency_of(r, r.p.phases[phase_total], "p99"); })
      .def_property_readonly("throughput", [](const py_prediction& r) { return view(r.p.throughput); },
                             "Successful responses per second.")
      .def_property_readonly("error_rate", [](const py_prediction& r) { return view(r.p.error_rate); })
      .def_property_readonly("utilization", [](const py_prediction& r) {
        py::dict d;
        for (const auto& [name, e] : r.p.utilization) d[py::str(name)] = e.value;
        return d;
      }, "Busy fraction of each resource (name -> fraction).")
      .def_property_readonly("pool", [](const py_prediction& r) { return to_python(prediction_to_json(r.s, r.p).at("pool")); },
                             "Pool statistics as `headroom predict --json` writes them (None without a pool).")
      .def_property_readonly("live", &live_of,
                             "One live run's prediction interval (run_length set): low/median/high of "
                             "the SLO percentile over simulated runs, p_slo = P(a run meets the SLO), "
                             "p_stable; {} when not computed.")
      .def_property_readonly("p_slo", [](const py_prediction& r) -> py::object {
        if (!r.p.live.computed || r.p.live.p_slo < 0) return py::none();
        return py::float_(r.p.live.p_slo);
      }, "P(one live run meets the SLO), or None without run_length and slo.")
      .def("histogram", [](const py_prediction& r) {
             std::vector<double> lower, upper;
             std::vector<std::uint64_t> count;
             r.p.latency_histogram.for_each_bucket([&](double lo, double hi, std::uint64_t c) {
               lower.push_back(lo);
               upper.push_back(hi);
               count.push_back(c);
             });
             py::dict d;
             d["lower"] = py::array_t<double>(static_cast<py::ssize_t>(lower.size()), lower.data());
             d["upper"] = py::array_t<double>(static_cast<py::ssize_t>(upper.size()), upper.data());
             d["count"] = py::array_t<std::uint64_t>(static_cast<py::ssize_t>(count.size()), count.data());
             d["zeros"] = r.p.latency_histogram.zeros();
             return d;
           },
           "The successful requests' end-to-end latency, pooled over every replication's measured "
           "window (what the percentiles are read from): numpy arrays `lower` and `upper` (bucket "
           "edges, seconds; each bucket at most 0.4 % wide) and `count` (requests, uint64), one "
           "entry per non-empty bucket, ascending; `zeros` counts latencies of exactly 0. Empty "
           "when the prediction was refused without simulating.")
      .def("to_dict", [](const py_prediction& r) { return to_python(prediction_to_json(r.s, r.p)); },
           "Exactly what `headroom predict --json` writes.")
      .def("table", [](const py_prediction& r) { return prediction_table(r.s, r.p); },
           "Exactly what `headroom predict` prints.")
      .def("__repr__", [](const py_prediction& r) {
        std::ostringstream o;
        o << "Prediction(";
        if (!r.p.stable) o << "unstable: " << r.p.reason;
        else o << "p99=" << r.p.phases[phase_total].p99.value << " s, throughput=" << r.p.throughput.value << "/s";
        return o.str() + ")";
      });

  m.def("simulate", [](const py_scenario& s) { return run_prediction(s.s); }, py::arg("scenario"),
        "Runs the model on a scenario as it is (the GIL is released meanwhile).");
  m.def("predict", [](const py_scenario& s, const py::kwargs& kw) {
          return run_prediction(with_overrides(s, kw).s);
        }, py::arg("scenario"),
        "`headroom predict` from Python: the scenario with the CLI's overrides (keyword "
        "arguments named as the flags), then the model.");

  m.def("sweep_points", [](const py_scenario& base, const py::object& rates, const py::object& max_open,
                           const py::object& max_idle, const py::object& cores) {
          py::list out;
          for (const sweep_point& p : sweep_points(base.s, grid_of(rates, max_open, max_idle, cores)))
            out.append(point_dict(p));
          return out;
        }, py::arg("scenario"), py::arg("rates"), py::arg("max_open") = py::none(),
        py::arg("max_idle") = py::none(), py::arg("cores") = py::none(),
        "The grid's points in order (rates fastest, then max_idle, max_open, cores), as dicts.");
  m.def("sweep_point", [](const py::dict& scenario_fields, const py::dict& point) {
          py_scenario base = from_dict(scenario_fields);
          sweep_result r;
          {
            sweep_point p = point_of(point);
            py::gil_scoped_release nogil;
            r = run_sweep_point(base.s, p, 1);
          }
          py::list rows = rows_of(base.s, {r});
          return py::object(rows[0]);
        }, py::arg("scenario_fields"), py::arg("point"),
        "One grid point predicted exactly as a local sweep predicts it (one thread), from plain "
        "data: what an executor's worker runs.");
  m.def("sweep", &run_sweep_local, py::arg("scenario"), py::arg("rates"), py::arg("max_open") = py::none(),
        py::arg("max_idle") = py::none(), py::arg("cores") = py::none(), py::arg("threads") = 0,
        py::arg("progress") = py::none(),
        "`headroom sweep` on this machine's cores (GIL released): one row per grid point, as the "
        "CLI's --json 'points'.");

  py::class_<py_plan>(m, "Plan", "A capacity plan (`headroom plan`): rates in req/s, times in seconds.")
      .def_property_readonly("feasible", [](const py_plan& p) { return p.p.feasible; })
      .def_property_readonly("reason", [](const py_plan& p) { return p.p.reason; },
                             "Why there is no plan, in plain words ('' when feasible).")
      .def_property_readonly("instances", [](const py_plan& p) -> py::object {
        if (!p.p.feasible || !p.p.chosen.count) return py::none();
        return py::int_(p.p.chosen.count->instances);
      }, "ceil(target / capacity) + redundancy, rounded to zones; None when infeasible.")
      .def_property_readonly("capacity", [](const py_plan& p) { return to_python(plan_to_json(p.p).at("capacity")); },
                             "Per-instance capacity and its interval (rps, low, high), as in the JSON.")
      .def_property_readonly("recommendation", [](const py_plan& p) {
        return to_python(plan_to_json(p.p).at("recommendation"));
      }, "optimize_pool's best setting when better than the planned one, else None.")
      .def_property_readonly("summary", [](const py_plan& p) { return p.p.summary; },
                             "The lines `headroom plan` prints.")
      .def("to_dict", [](const py_plan& p) { return to_python(plan_to_json(p.p)); },
           "Exactly what `headroom plan --json` writes (format headroom-plan/1).")
      .def("text", [](const py_plan& p) { return plan_text(p.p); })
      .def("markdown", [](const py_plan& p) { return plan_markdown(p.p); })
      .def("__repr__", [](const py_plan& p) {
        if (!p.p.feasible) return "Plan(infeasible: " + p.p.reason + ")";
        return "Plan(instances=" + std::to_string(p.p.chosen.count ? p.p.chosen.count->instances : 0) +
               ", capacity=" + std::to_string(p.p.chosen.capacity.rps) + " req/s)";
      });
  m.def("plan", &run_plan, py::arg("scenario"), py::arg("target_rps"), py::arg("slo") = "p99=60ms",
        "`headroom plan` from Python (GIL released). Keywords as the CLI's flags: confidence, "
        "redundancy, zones, survive_zone_loss, window, window_warmup, runs, plan_precision "
        "(--precision), optimize_pool, exclude_generator, db_max_connections, service_cores "
        "(--cores), db_cores, db_rtt, progress (a callable taking one line), and the scenario "
        "overrides (max_open, max_idle, go_version, seed, threads, ...).");
}
