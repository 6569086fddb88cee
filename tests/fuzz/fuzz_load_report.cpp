// Fuzz target: a JSON report as `headroom load merge` reads it: parsed, merged with itself (two
// machines that measured the same), written back as JSON and as the text report.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "load_report.hpp"

namespace cal = headroom::calibrate;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(text, ec);
  if (ec) return 0;  // merge stops with "not JSON" before the reader
  cal::load_result r;
  try {
    r = cal::from_json(v);
  } catch (const std::invalid_argument&) {
    return 0;  // documented: one invalid_argument naming the problem
  }
  cal::load_result merged = r;
  cal::merge_into(merged, r);
  // What merge writes must read back: a merged report can be merged again.
  cal::from_json(cal::to_json(merged));
  cal::text_report(merged);
  return 0;
}
