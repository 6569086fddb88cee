// Fuzz target: a scenario or calibration file's text, through both readers `headroom predict`
// and `headroom calibrate` use. A scenario that reads must also survive being written back and
// read again (the calibration file does exactly that).
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "calibration_file.hpp"
#include "prediction.hpp"
#include "scenario_json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(text, ec);
  if (!ec) {
    try {
      const headroom::scenario s = headroom::scenario_from_json(v);
      headroom::scenario_from_json(headroom::scenario_to_json(s));  // must not throw
    } catch (const headroom::scenario_error&) {
      // A bad field: `headroom predict` names it and exits 2.
    }
  }
  try {
    const auto f = headroom::calibrate::calibration_file_from_text(text);
    headroom::calibrate::to_json(f);
  } catch (const std::invalid_argument&) {
    // Documented: a truncated or foreign file is one invalid_argument naming the problem.
  }
  return 0;
}
