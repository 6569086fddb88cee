// Durations as people type them ("250ms", "5s", "2m"; a bare number is seconds), the one
// parser behind every duration flag of headroom and headroom-service, and its inverse for
// messages and tables.
#pragma once

#include <string>

namespace headroom {

// "20s", "500ms", "250us", "2m", "1h", or plain seconds ("1.5"), to seconds.
// Throws std::invalid_argument naming the text and the units it accepts.
double parse_duration(const std::string& text);

// Seconds to the shortest readable form with a unit: 0.25 -> "250ms", 5 -> "5s", 120 -> "2m".
std::string format_duration(double seconds);

}  // namespace headroom
