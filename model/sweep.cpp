// The sweep: a grid of what-ifs, each a full prediction. Points are independent, so they run
// side by side on the machine's cores; results land in their grid slot, never in finishing order.
#include "sweep.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

namespace headroom {

std::vector<sweep_point> sweep_points(const scenario& base, const sweep_grid& grid) {
  const bool trace = base.arrivals.process == arrival_process::trace;
  if (trace && !grid.rates.empty())
    throw scenario_error("rates: the scenario replays a trace; a rate does not apply");
  if (!trace && grid.rates.empty()) throw scenario_error("rates: give at least one rate");
  for (double r : grid.rates)
    if (!(r > 0)) throw scenario_error("rates: every rate must be > 0 req/s");
  for (double c : grid.cores)
    if (!(c > 0)) throw scenario_error("cores: every core count must be > 0");
  for (int m : grid.max_open)
    if (m < 0) throw scenario_error("max_open: must be >= 0 (0 = unlimited)");
  // An empty list is the scenario's own value: a grid of one.
  auto or_base = [](const auto& list, auto value) {
    return list.empty() ? std::vector<decltype(value)>{value} : list;
  };
  const auto rates = trace ? std::vector<double>{offered_rate(base)} : grid.rates;
  const auto opens = or_base(grid.max_open, base.pool.max_open);
  const auto idles = or_base(grid.max_idle, base.pool.max_idle);
  const auto cores = or_base(grid.cores, base.cores);
  std::vector<sweep_point> out;
  for (double c : cores)
    for (int mo : opens)
      for (int mi : idles)
        for (double r : rates) out.push_back({out.size(), r, mo, mi, c});
  return out;
}

scenario scenario_at(const scenario& base, const sweep_point& point) {
  scenario s = base;
  if (s.arrivals.process != arrival_process::trace) s.arrivals.rate = point.rate;
  s.pool.max_open = point.max_open;
  s.pool.max_idle = point.max_idle;
  s.cores = point.cores;
  return s;
}

sweep_result run_sweep_point(const scenario& base, const sweep_point& point, int threads) {
  scenario s = scenario_at(base, point);
  s.run.threads = threads;
  return {point, predict(s)};
}

std::vector<sweep_result> run_sweep(const scenario& base, const sweep_grid& grid,
                                    const sweep_options& options) {
  const std::vector<sweep_point> points = sweep_points(base, grid);
  // Every point checked before any runs: a typo at the end of a grid costs nothing.
  for (const sweep_point& pt : points) validate(scenario_at(base, pt));
  int threads =
      options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::max(threads, 1);
  const bool by_points = options.parallelism == sweep_parallelism::points;
  const int point_threads = by_points ? std::min<int>(threads, static_cast<int>(points.size())) : 1;

  std::vector<sweep_result> out(points.size());
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex progress_mutex;
  std::size_t done = 0;
  const auto start = std::chrono::steady_clock::now();
  auto work = [&] {
    for (;;) {
      const std::size_t i = next.fetch_add(1);
      if (i >= points.size() || failed) return;
      try {
        // One thread per point when points share the cores; all of them otherwise.
        out[i] = run_sweep_point(base, points[i], by_points ? 1 : threads);
      } catch (...) {
        if (!failed.exchange(true)) error = std::current_exception();
        return;
      }
      std::lock_guard lock(progress_mutex);
      ++done;
      if (options.progress) {
        sweep_progress pr;
        pr.done = done;
        pr.total = points.size();
        pr.last = &out[i];
        pr.elapsed =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        pr.eta = pr.elapsed / static_cast<double>(done) * static_cast<double>(points.size() - done);
        options.progress(pr);
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < point_threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  return out;
}

double knee_rate(const std::vector<sweep_result>& results, double confidence) {
  double knee = 0;
  for (const sweep_result& r : results) {
    const live_run_estimate& l = r.p.live;
    if (!l.computed || l.p_slo < 0 || l.p_slo < confidence) break;
    knee = r.point.rate;
  }
  return knee;
}

}  // namespace headroom
