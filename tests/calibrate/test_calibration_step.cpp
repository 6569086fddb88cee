// Reading a calibration step back from its JSON: counts that do not fit an int are refused with
// the field's path (casting them was undefined behaviour, found by the scenario_file fuzz target).
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>

#include "calibration_step.hpp"

using namespace headroom::calibrate;

namespace {
// A step as `headroom calibrate` writes it, with one field of one object replaced.
boost::json::value step_with(const char* object, const char* key, boost::json::value v) {
  calibration_step s;
  s.index = 3;
  s.label = "default";
  s.rate = 100;
  s.pool = pool_setting{8, 2, "1.10", "random"};
  s.cpu = local_cpu{};
  boost::json::object o = to_json(s);
  boost::json::object& target = *object ? o[object].as_object() : o;
  target[key] = v;
  return o;
}

std::string error_of(const boost::json::value& v) {
  try {
    calibration_step_from_json(v);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("a calibration step reads back what it wrote") {
  calibration_step s = calibration_step_from_json(step_with("pool", "max_idle", -1));
  CHECK(s.index == 3);
  REQUIRE(s.pool.has_value());
  CHECK(s.pool->max_open == 8);
  CHECK(s.pool->max_idle == -1);  // Go's "keep none", as the service takes it
}

TEST_CASE("a calibration step's count beyond an int is refused, naming the field") {
  CHECK(error_of(step_with("", "repeat", 1e10)) ==
        "steps[3].repeat: not an integer from 0 to 2147483647");
  CHECK(error_of(step_with("pool", "max_open", 4294967297)) ==
        "steps[3].pool.max_open: not an integer from 0 to 2147483647");
  CHECK(error_of(step_with("cpu", "cores", 2.5)) ==
        "steps[3].cpu.cores: not an integer from 0 to 2147483647");
  CHECK(error_of(step_with("", "index", -1)) == "step.index: not an integer from 0 to 2147483647");
}

TEST_CASE("a step's CPU contention reads back; absent or null is not measured, negative refused") {
  calibration_step s;
  s.rate = 100;
  local_cpu c;
  c.cpu_pressure = 0.25;
  c.waiting = 0.5;
  c.postmaster_wait = 0.003;
  s.cpu = c;
  const calibration_step back = calibration_step_from_json(to_json(s));
  REQUIRE(back.cpu);
  CHECK(back.cpu->cpu_pressure == 0.25);
  CHECK(back.cpu->waiting == 0.5);
  CHECK(back.cpu->postmaster_wait == 0.003);

  s.cpu = local_cpu{};  // a kernel without PSI or schedstat: written as null
  boost::json::object o = to_json(s);
  CHECK(o["cpu"].as_object()["cpu_pressure"].is_null());
  CHECK_FALSE(calibration_step_from_json(o).cpu->cpu_pressure);
  o["cpu"].as_object().erase("waiting");  // a file from before these fields
  CHECK_FALSE(calibration_step_from_json(o).cpu->waiting);
  CHECK(error_of(step_with("cpu", "postmaster_wait", -1)) ==
        "steps[3].cpu.postmaster_wait: must be >= 0");
}
