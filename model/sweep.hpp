// A sweep: one scenario predicted at every point of a grid of offered rates x pool settings x
// cores (what `headroom sweep` prints and the report draws). A grid spec in, one prediction per
// point out; the same seed gives the same results whatever the thread count or finishing order.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "prediction.hpp"
#include "scenario.hpp"

namespace headroom {

// Each list empty: the scenario's own value (rates must not be empty unless the scenario replays
// a trace, which a rate does not apply to).
struct sweep_grid {
  std::vector<double> rates;  // requests per second
  std::vector<int> max_open, max_idle;
  std::vector<double> cores;
};

struct sweep_point {
  std::size_t index =
      0;  // position in the grid (rates vary fastest, then max_idle, max_open, cores)
  double rate = 0;
  int max_open = 0, max_idle = 0;
  double cores = 0;
};

struct sweep_result {
  sweep_point point;
  prediction p;
};

// How the machine's cores are shared out. Points: several points at once, each on one thread;
// a point's stop rule then never depends on the thread count, so results are identical for any
// `threads`. Replications: one point at a time, its replications on every thread; the stop rule
// adds replications in batches of at least `threads`, so its results depend on the thread count.
enum class sweep_parallelism { points, replications };

struct sweep_progress {
  std::size_t done = 0, total = 0;
  const sweep_result* last = nullptr;  // the point just finished
  double elapsed = 0;                  // seconds since the sweep started
  double eta = 0;                      // seconds left, from the mean time per finished point
};

struct sweep_options {
  int threads = 0;  // 0 = all cores
  sweep_parallelism parallelism = sweep_parallelism::points;
  // Called after each point, one call at a time (from whichever thread finished it).
  std::function<void(const sweep_progress&)> progress;
};

// The grid's points in order; throws scenario_error for an empty rate list or a bad value.
std::vector<sweep_point> sweep_points(const scenario& base, const sweep_grid& grid);
// The scenario of one point: `base` at that rate, pool limits and cores.
scenario scenario_at(const scenario& base, const sweep_point& point);
// One point predicted as run_sweep predicts it, its replications on `threads` threads (1: as
// in sweep_parallelism::points, whose results do not depend on the machine; a cluster that
// farms points out one by one uses this and gets the same results as a local sweep).
sweep_result run_sweep_point(const scenario& base, const sweep_point& point, int threads = 1);
// Every point predicted (predict(), live-run interval included when run.live_length > 0), in
// grid order. Throws scenario_error for a bad scenario or grid before anything runs.
std::vector<sweep_result> run_sweep(const scenario& base, const sweep_grid& grid,
                                    const sweep_options& options = {});

// The highest rate of `results` (one pool setting and core count, rates ascending) up to which
// every point's one live run meets the SLO with probability >= `confidence`; 0 when even the
// first does not. Needs run.live_length > 0 and an SLO (else 0).
double knee_rate(const std::vector<sweep_result>& results, double confidence);

}  // namespace headroom
