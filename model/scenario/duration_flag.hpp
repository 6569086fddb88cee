// A command-line flag that takes a duration with units, for CLI11 front-ends (headroom and
// headroom-service). It lives beside duration.hpp, the one place both front-ends reach, so every
// duration flag parses the same way and says its unit in --help. Header-only: the simulation
// library itself does not use CLI11.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <stdexcept>
#include <string>

#include "duration.hpp"

namespace headroom {

inline constexpr const char* duration_units_help = "duration: 250ms, 5s, 2m; a bare number is seconds";

// Binds a flag to seconds (double or std::optional<double>); --help shows the current value
// with its unit as the default.
template <class Seconds>
CLI::Option* add_duration_flag(CLI::App* app, const std::string& name, Seconds& seconds,
                               const std::string& help) {
  CLI::Option* o = app->add_option_function<std::string>(
      name,
      [&seconds, name](const std::string& text) {
        try {
          seconds = parse_duration(text);
        } catch (const std::invalid_argument& e) {
          throw CLI::ValidationError(name, e.what());
        }
      },
      help + " (" + duration_units_help + ")");
  if constexpr (std::is_same_v<Seconds, double>) o->default_str(format_duration(seconds));
  return o;
}

}  // namespace headroom
