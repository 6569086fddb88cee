// Parses the W3C Server-Timing response header into (phase, seconds) pairs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace headroom::calibrate {

struct server_timing_entry {
  std::string name;
  double seconds;  // the header's dur is in milliseconds; converted here
};

struct server_timing_parse {
  std::vector<server_timing_entry> entries;  // metrics with a valid, non-negative dur
  bool malformed = false;                    // some part could not be read (and was skipped)
};

// Never throws: a malformed metric is skipped and flagged, the rest is still used, so one odd
// header from a target cannot stop a measurement. A metric without dur (allowed by the spec,
// e.g. `cache;desc=hit`) is neither kept nor malformed.
server_timing_parse parse_server_timing(std::string_view header);

}  // namespace headroom::calibrate
