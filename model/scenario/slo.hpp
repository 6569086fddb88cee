// A latency SLO as people write it on the command line: "p99=60ms" (the 99th percentile of a
// run's latency under 60 ms). One parser for calibrate, validate, predict and plan.
#pragma once

#include <string>

namespace headroom {

struct latency_slo {
  double quantile = 0.99;  // in (0, 1)
  double latency = 0.060;  // seconds
  std::string name() const;  // "p99", "p99.9", "p50"
  std::string text() const;  // "p99 < 60ms"
};

// "p50", "p90", "p95", "p99" or "p99.9" (any pNN[.N] in (0, 100)), "=", a duration
// ("60ms", "0.06"). Throws std::invalid_argument naming the text and the expected form.
latency_slo parse_slo(const std::string& text);

}  // namespace headroom
