// The HTML report from a real calibration file (tests/report/fixtures: a demo's calibration on
// this kind of machine), a plan in `headroom plan --json`'s format and a validation in
// `headroom validate --json`'s: its charts, its knee, the plan's lines, and that it names
// nothing to fetch. Rendering it in a browser is render_report.py's test.
#include <catch2/catch.hpp>
#include <cmath>
#include <regex>
#include <string>

#include "report_data.hpp"
#include "report_page.hpp"
#include "svg_chart.hpp"

using namespace headroom;
using namespace headroom::report;

namespace {

std::string fixture(const std::string& name) {
  return std::string(HEADROOM_REPORT_FIXTURES) + "/" + name;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Few, coarse points: the page's structure is under test here, not the model's precision.
report_request small_request() {
  report_request r;
  r.calibration = fixture("calibration.json");
  r.points = 5;
  r.precision = 0.1;
  return r;
}

// Gathered once for every test (the sweeps take most of this file's time): the calibration with
// the plan and the validation.
const report_inputs& full_inputs() {
  static const report_inputs in = [] {
    report_request r = small_request();
    r.plan = fixture("plan.json");
    r.validation = fixture("validation.json");
    return gather_report_inputs(r);
  }();
  return in;
}

// The same calibration as if given alone.
report_inputs calibration_only() {
  report_inputs in = full_inputs();
  in.plan.reset();
  in.validation.reset();
  in.curves.resize(1);
  return in;
}

}  // namespace

TEST_CASE("a calibration alone gives a page of three charts with the measured steps") {
  const report_inputs in = calibration_only();
  REQUIRE(in.steps.size() == 6);  // the fixture: 50, 150, 300 req/s, twice each
  CHECK(in.steps[2].rate == 300);
  CHECK(in.steps[5].repeat == 1);
  // Every step at 300 req/s measured a few ms of p99 and a query phase under 2 ms.
  for (const measured_step& s : in.steps) {
    CHECK(s.p99 > s.p50);
    CHECK(s.has_phases);
    CHECK(s.phase_mean[3] > 0);      // query
    CHECK(s.phase_mean[3] < 0.002);  // the indexed query: well under 2 ms (DESIGN.md)
  }
  // Rates from half the lowest step to 1.5 x the highest: 25 to 450 req/s.
  REQUIRE(in.curves.size() == 1);
  CHECK(in.curves[0].points.front().point.rate == 25);
  CHECK(in.curves[0].points.back().point.rate == 450);
  const std::string html = report_html(in);
  CHECK(report_chart_count(in) == 3);
  CHECK(count(html, "<svg") == 3);
  CHECK(count(html, "</svg>") == 3);
  CHECK(html.find("offered rate (req/s)") != std::string::npos);
  CHECK(html.find("latency (ms, log scale)") != std::string::npos);
  CHECK(html.find("mean time per request (ms)") != std::string::npos);
  CHECK(html.find("events per second (1/s)") != std::string::npos);
  CHECK(html.find("SLO: p99 &lt; 60ms") != std::string::npos);
  // The title names what was calibrated (the provenance's method and target).
  CHECK(html.find("<h1>Headroom report: POST http://127.0.0.1:41607/</h1>") != std::string::npos);
  if (in.curves[0].knee > 0) {
    std::ostringstream knee;
    knee << "knee " << in.curves[0].knee << " req/s";
    CHECK(html.find(knee.str()) != std::string::npos);
  }
}

TEST_CASE("a plan and a validation add the plan's lines, its pool's curve and a fourth chart") {
  const report_inputs& in = full_inputs();
  REQUIRE(in.curves.size() == 2);  // the calibrated setting, then the plan's max_open 8 max_idle 8
  CHECK(in.curves[1].max_open == 8);
  CHECK(in.curves[1].max_idle == 8);
  CHECK(in.confidence == 0.9);
  const std::string html = report_html(in);
  CHECK(count(html, "<svg") == 4);
  CHECK(html.find("instances = ceil(1000 / 260) + 1 = 5") != std::string::npos);
  CHECK(html.find("predicted p99 at the plan&#39;s setting") != std::string::npos);
  CHECK(html.find("Validation: cases the model was not fitted on") != std::string::npos);
  // The validation's third case fell over in one run: said so, not drawn as a number.
  CHECK(html.find("fell over") != std::string::npos);
}

TEST_CASE("the page names nothing to fetch: no script, stylesheet, image or URL to load") {
  const std::string html = report_html(full_inputs());
  for (const char* tag : {"<script", "<link", "<img", "<iframe", "<object", "@import"})
    CHECK(html.find(tag) == std::string::npos);
  const std::regex fetched(R"((src|href)\s*=|url\s*\()", std::regex::icase);
  CHECK_FALSE(std::regex_search(html, fetched));
}

TEST_CASE("a plan file of another format is refused, naming the file") {
  report_request r = small_request();
  r.plan = fixture("validation.json");
  CHECK_THROWS_WITH(
      gather_report_inputs(r),
      Catch::Contains("validation.json: not a plan (\"format\" is not \"headroom-plan/1\")"));
}

TEST_CASE("a chart breaks its line at an unknown value and draws +inf on its top edge") {
  svg_chart chart({"x (units)", 0, 10, false, {}, 1},
                  {"y (ms, log scale)", 0.001, 1, true, {}, 1000}, 400, 300);
  chart.line({1, 2, 3, 4}, {0.01, 0.02, NAN, 0.04}, "#000", "a line");
  chart.points({5}, {INFINITY}, "#000", "a point");
  const std::string svg = chart.svg("test");
  // Two pieces (M ... L, then M alone): one move per piece.
  std::smatch m;
  REQUIRE(std::regex_search(svg, m, std::regex(R"re(<path d="([^"]*)")re")));
  CHECK(count(m[1].str(), "M") == 2);
  // The plot's top edge is at y = top margin (56 px); +inf sits on it.
  CHECK(svg.find("cy=\"56.0\"") != std::string::npos);
  // Log ticks 1, 2, 5 per decade from 1 ms to 1000 ms, labelled in ms without exponents.
  for (const char* t : {">1<", ">2<", ">5<", ">10<", ">100<", ">500<", ">1000<"})
    CHECK(svg.find(t) != std::string::npos);
}
