// The calibration file: a scenario (model/SCENARIO.md, schema headroom.calibration/1) whose
// parameters were fitted, plus a `calibration` block with where it came from, how well each part
// was fitted, every step's raw measurements and the cross-validation. `headroom predict
// --calibration` reads it as a scenario; `headroom calibrate --append` reads its steps back.
// CALIBRATION.md documents the block.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "calibration_step.hpp"
#include "scenario.hpp"

namespace headroom::calibrate {

struct calibration_file {
  std::optional<scenario> model;   // nothing until a fit succeeded
  boost::json::object provenance;  // target, request, command line, machine, times
  boost::json::object fit;         // calibration_fit's report
  std::vector<calibration_step> steps;
  boost::json::array cross_validation;
};

boost::json::object to_json(const calibration_file& f);
// Throws std::invalid_argument "PATH: problem" for an unreadable, truncated or foreign file.
calibration_file read_calibration_file(const std::string& path);
// The same from the file's text; the problem without the path.
calibration_file calibration_file_from_text(std::string_view text);
// Written to PATH.tmp and renamed: a reader (or a crash) never sees half a file.
// Throws std::runtime_error if it cannot be written.
void write_calibration_file(const std::string& path, const calibration_file& f);

}  // namespace headroom::calibrate
