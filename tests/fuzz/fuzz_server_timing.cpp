// Fuzz target: a Server-Timing header value, as `headroom load` reads it from a target's
// response: parsed, then each duration recorded in a phase histogram.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "latency_histogram.hpp"
#include "server_timing.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view header(reinterpret_cast<const char*>(data), size);
  const auto parsed = headroom::calibrate::parse_server_timing(header);
  headroom::calibrate::latency_histogram phase;
  for (const auto& e : parsed.entries) {
    // Documented: only valid, non-negative durations are kept.
    if (!std::isfinite(e.seconds) || e.seconds < 0 || e.name.empty()) std::abort();
    phase.record(e.seconds);
  }
  if (phase.total_count() != parsed.entries.size()) std::abort();
  phase.percentile(99);
  return 0;
}
