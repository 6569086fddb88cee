// The calibration file (calibration_file.hpp).
#include "calibration_file.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "prediction.hpp"
#include "scenario_json.hpp"

namespace headroom::calibrate {
namespace json = boost::json;

json::object to_json(const calibration_file& f) {
  json::object o;
  if (f.model) o = scenario_to_json(*f.model).as_object();
  o["schema"] = "headroom.calibration/1";
  json::array steps;
  for (const calibration_step& s : f.steps) steps.push_back(to_json(s));
  o["calibration"] = {{"fitted", f.model.has_value()},
                      {"provenance", f.provenance},
                      {"fit", f.fit},
                      {"cross_validation", f.cross_validation},
                      {"steps", std::move(steps)}};
  return o;
}

calibration_file calibration_file_from_text(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) throw std::invalid_argument("not JSON (" + ec.message() + "): truncated?");
  if (!v.is_object()) throw std::invalid_argument("not a calibration file (not an object)");
  const json::object& o = v.get_object();
  const json::value* schema = o.if_contains("schema");
  if (!schema || !schema->is_string() || schema->get_string() != "headroom.calibration/1")
    throw std::invalid_argument("not a calibration file (schema is not headroom.calibration/1)");
  const json::value* block = o.if_contains("calibration");
  if (!block || !block->is_object())
    throw std::invalid_argument("calibration: missing (not written by headroom calibrate)");
  const json::object& c = block->get_object();
  calibration_file f;
  if (const json::value* p = c.if_contains("provenance"); p && p->is_object())
    f.provenance = p->get_object();
  if (const json::value* p = c.if_contains("fit"); p && p->is_object()) f.fit = p->get_object();
  if (const json::value* p = c.if_contains("cross_validation"); p && p->is_array())
    f.cross_validation = p->get_array();
  const json::value* steps = c.if_contains("steps");
  if (!steps || !steps->is_array()) throw std::invalid_argument("calibration.steps: missing");
  for (const json::value& s : steps->get_array()) f.steps.push_back(calibration_step_from_json(s));
  const json::value* fitted = c.if_contains("fitted");
  if (fitted && fitted->is_bool() && fitted->get_bool()) f.model = scenario_from_json(v);
  return f;
}

calibration_file read_calibration_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument(path + ": cannot read");
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return calibration_file_from_text(text.str());
  } catch (const std::invalid_argument& e) {  // scenario_error is one too
    throw std::invalid_argument(path + ": " + e.what());
  }
}

void write_calibration_file(const std::string& path, const calibration_file& f) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << json::serialize(to_json(f)) << "\n";
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      throw std::runtime_error("cannot write " + path);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write " + path);
  }
}

}  // namespace headroom::calibrate
