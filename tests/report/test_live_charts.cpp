// The live window's panels drawn from data (no Prometheus here: test_live_dashboard.py reads a
// real one): lines over clock time, the model's dashed levels, "no data for <metric>", the
// table's medians, and the default step.
#include <catch2/catch.hpp>
#include <cmath>
#include <regex>
#include <string>

#include "live_charts.hpp"
#include "live_window.hpp"

using namespace headroom;
using namespace headroom::report;

namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// 2026-11-29 08:00:00 UTC.
constexpr double eight = 1795939200;

// A window of 08:00 to 08:15 at 3 s steps: idle for the first 5 minutes, then 100 req/s.
live_window window_with_load() {
  live_window w;
  w.prometheus = "http://127.0.0.1:9090";
  w.job = "headroom-service";
  w.from = eight;
  w.to = eight + 900;
  w.step = 3;
  w.rate_window = 12;
  live_series rate{"code 200", {}, {}}, p99{"p99", {}, {}};
  for (double t = w.from; t <= w.to; t += w.step) {
    const bool busy = t >= eight + 300;
    rate.t.push_back(t);
    rate.v.push_back(busy ? 100 : 0);
    p99.t.push_back(t);
    p99.v.push_back(busy ? 0.004 : NAN);  // no request, no quantile: Prometheus says NaN
    if (busy) w.busy_times.push_back(t);
  }
  w.busy_rate = 100;
  w.panels.push_back({"Request rate by status",
                      "requests per second (1/s)",
                      1,
                      false,
                      false,
                      {rate},
                      {},
                      {{"model throughput", 100, "code 200"}}});
  w.panels.push_back({"Latency",
                      "latency (ms, log scale)",
                      1000,
                      true,
                      true,
                      {p99},
                      {},
                      {{"model p99", 0.005, "p99"}}});
  w.panels.push_back({"CPU",
                      "CPU busy (cores)",
                      1,
                      false,
                      false,
                      {},
                      {"process_cpu_seconds_total", "node_cpu_seconds_total"},
                      {}});
  return w;
}

std::string solid_paths(const std::string& svg) {
  std::string out;
  const std::regex path("<path [^>]*>");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), path); it != std::sregex_iterator();
       ++it)
    if (it->str().find("stroke-dasharray") == std::string::npos) out += it->str() + "\n";
  return out;
}

}  // namespace

TEST_CASE("a live panel draws its series as a line over UTC clock ticks every five minutes") {
  const live_window w = window_with_load();
  const std::string svg = live_panel_svg(w, w.panels[0], latency_slo{});
  CHECK(count(svg, "<svg") == 1);
  CHECK(count(solid_paths(svg), "<path") == 1);  // code 200
  // 900 s on a 470 px chart: at most 4 ticks, so every 5 minutes, at whole minutes.
  for (const char* tick : {">08:00<", ">08:05<", ">08:10<", ">08:15<"})
    CHECK(svg.find(tick) != std::string::npos);
  CHECK(svg.find(">08:02<") == std::string::npos);
  CHECK(svg.find("time (UTC)") != std::string::npos);
  CHECK(svg.find("no data") == std::string::npos);
}

TEST_CASE("the model's figure is a dashed level across the panel, at its value") {
  const live_window w = window_with_load();
  const std::string svg = live_panel_svg(w, w.panels[0], latency_slo{});
  // One dashed level (the model's throughput) and the legend's sample of it.
  const std::regex level(
      R"re(<path d=" M([0-9.]+),([0-9.]+) L([0-9.]+),([0-9.]+)" [^>]*stroke-dasharray)re");
  std::smatch m;
  REQUIRE(std::regex_search(svg, m, level));
  CHECK(std::stod(m[2]) == std::stod(m[4]));  // level: the same y at both ends
  // The solid line at 100 req/s and the level at 100 req/s meet: the same pixel row (to the
  // 0.1 px the chart writes).
  CHECK(solid_paths(svg).find("," + m[2].str()) != std::string::npos);
  CHECK(svg.find("dashed: the model") != std::string::npos);
}

TEST_CASE("a latency panel breaks its line where no request arrived and draws the SLO") {
  const live_window w = window_with_load();
  const std::string svg = live_panel_svg(w, w.panels[1], latency_slo{});
  const std::string solid = solid_paths(svg);
  REQUIRE(count(solid, "<path") == 1);
  // The line starts at 08:05 (the first busy point): exactly one move-to, no line through NaN.
  CHECK(count(solid, " M") == 1);
  CHECK(svg.find("SLO: p99 &lt; 60ms") != std::string::npos);
}

TEST_CASE("a panel whose metrics are missing says no data for each, and draws no line") {
  const live_window w = window_with_load();
  const std::string svg = live_panel_svg(w, w.panels[2], latency_slo{});
  CHECK(svg.find(">no data for process_cpu_seconds_total<") != std::string::npos);
  CHECK(svg.find(">no data for node_cpu_seconds_total<") != std::string::npos);
  CHECK(count(svg, "<path") == 0);
}

TEST_CASE("beside a drawn line, a missing metric is said in the legend, above the plot") {
  live_window w = window_with_load();
  live_panel& cpu = w.panels[2];
  cpu.series.push_back({"machine (node_exporter)", w.panels[0].series[0].t, {}});
  for (double t : cpu.series[0].t) cpu.series[0].v.push_back(t < eight + 300 ? 0.1 : 1.9);
  cpu.missing = {"process_cpu_seconds_total"};
  const std::string svg = live_panel_svg(w, cpu, latency_slo{});
  std::smatch m;
  REQUIRE(std::regex_search(
      svg, m,
      std::regex(
          R"re(<text x="[0-9.]+" y="([0-9.]+)" class="no-data">no data for process_cpu_seconds_total<)re")));
  // The plot's frame starts 56 px down (svg_chart's top margin): the note is above it, off the
  // line near the top of the plot.
  CHECK(std::stod(m[1]) < 56);
}

TEST_CASE("a latency panel without data draws no SLO line over its note") {
  live_window w = window_with_load();
  live_panel& latency = w.panels[1];
  latency.series.clear();
  latency.model.clear();
  latency.missing = {"http_request_seconds"};
  const std::string svg = live_panel_svg(w, latency, latency_slo{});
  CHECK(svg.find(">no data for http_request_seconds<") != std::string::npos);
  CHECK(svg.find("SLO:") == std::string::npos);
}

TEST_CASE("the section's table sets each live median while busy beside the model's figure") {
  const live_window w = window_with_load();
  const std::string html = live_section(w, latency_slo{});
  CHECK(count(html, "<svg") == 3);
  // The idle first five minutes do not count: the live rate is 100, the p99 4 ms.
  CHECK(html.find("<td>code 200</td><td>100.0</td><td>100.0</td>") != std::string::npos);
  CHECK(html.find("<td>p99</td><td>4.00 ms</td><td>5.00 ms</td>") != std::string::npos);
  CHECK(html.find("<td>process_cpu_seconds_total</td><td>no data</td>") != std::string::npos);
  CHECK(html.find("No request arrived") == std::string::npos);
}

TEST_CASE("the median while busy ignores idle points and the ramp at a load test's edges") {
  live_series s{"total", {1, 2, 3, 4, 5, 6, 7}, {0, 30, 100, 101, 99, 40, 0}};
  // Busy: 2..6; the ramp points 30 and 40 sit at the ends of the sorted values.
  CHECK(busy_median(s, {2, 3, 4, 5, 6}) == 99);
  CHECK(std::isnan(busy_median(s, {})));
}

TEST_CASE("the default step keeps a panel to about 300 points, whole seconds, at least 1 s") {
  CHECK(default_live_step(0, 900) == 3);    // 15 minutes: 300 points
  CHECK(default_live_step(0, 3600) == 12);  // an hour
  CHECK(default_live_step(0, 1000) == 4);   // rounded up: 250 points
  CHECK(default_live_step(0, 60) == 1);     // never below a second
}
