// The calibration's step plan: explicit and automatic rates, interleaved repeats, guards.
#include <catch2/catch.hpp>
#include <vector>

#include "slo.hpp"
#include "step_plan.hpp"

using namespace headroom::calibrate;

namespace {

// Runs a plan against a fake target whose p99 is `p99(rate)`, all requests answered: returns
// the (rate, repeat) sequence.
template <class P99>
std::vector<std::pair<double, int>> run(step_plan& plan, P99 p99, double failed = 0) {
  std::vector<std::pair<double, int>> seen;
  while (auto s = plan.next()) {
    seen.push_back({s->rate, s->repeat});
    step_outcome o;
    o.rate = s->rate;
    o.achieved = s->rate;
    o.latency_quantile = p99(s->rate);
    o.failed_fraction = failed;
    plan.record(o);
    REQUIRE(seen.size() < 200);  // a plan always ends
  }
  return seen;
}

}  // namespace

TEST_CASE("explicit rates are measured once each, then again in a second interleaved pass") {
  step_plan_options o;
  o.rates = {50, 500, 1000};
  o.repeats = 2;
  step_plan plan(o);
  auto seen = run(plan, [](double) { return 0.005; });
  std::vector<std::pair<double, int>> want = {{50, 0}, {500, 0}, {1000, 0},
                                              {50, 1}, {500, 1}, {1000, 1}};
  CHECK(seen == want);
  CHECK(plan.stop_reason().empty());
}

TEST_CASE("a rate above --max-rate is refused before anything is sent") {
  step_plan_options o;
  o.rates = {50, 5000};
  o.max_rate = 3000;
  CHECK_THROWS_WITH(step_plan(o), Catch::Contains("--max-rate"));
  o.rates = {50};
  o.repeats = 0;
  CHECK_THROWS_WITH(step_plan(o), Catch::Contains("--repeats"));
}

TEST_CASE("the automatic ramp climbs geometrically to the SLO, refines below it, then repeats") {
  step_plan_options o;
  o.start_rate = 100;
  o.growth = 2;
  o.refine = 1;
  o.repeats = 2;
  o.slo_latency = 0.060;
  step_plan plan(o);
  // p99 crosses 60 ms between 400 and 800 req/s.
  auto seen = run(plan, [](double r) { return r < 600 ? 0.010 : 0.200; });
  // Climb 100, 200, 400, 800 (over the SLO, not over --abort-latency 600 ms: kept and repeated),
  // refine at sqrt(400 x 800) = 565.7, then every rate again in increasing order.
  REQUIRE(seen.size() == 10);
  CHECK(seen[0].first == 100);
  CHECK(seen[3].first == 800);
  CHECK(seen[4].first == Approx(565.685).epsilon(1e-4));
  CHECK(seen[4].second == 0);
  std::vector<double> second;
  for (std::size_t i = 5; i < seen.size(); ++i) {
    CHECK(seen[i].second == 1);
    second.push_back(seen[i].first);
  }
  CHECK(second.size() == 5);
  CHECK(std::is_sorted(second.begin(), second.end()));
  CHECK_THAT(plan.stop_reason(), Catch::Contains("at 800 req/s") && Catch::Contains("SLO"));
}

TEST_CASE("a rate whose errors or latency trip the guard is never sent again, nor any higher") {
  step_plan_options o;
  o.start_rate = 100;
  o.growth = 2;
  o.refine = 1;
  o.repeats = 3;
  o.abort_latency = 0.5;
  step_plan plan(o);
  auto seen = run(plan, [](double r) { return r >= 800 ? 5.0 : 0.010; });
  int at_or_over_800 = 0;
  for (auto& [rate, rep] : seen)
    if (rate >= 800) ++at_or_over_800;
  CHECK(at_or_over_800 == 1);  // the one step that tripped the guard
  // 100, 200, 400, 800, then 565.7 (under the guard), then two passes over the four safe rates.
  CHECK(seen.size() == 5 + 2 * 4);
  CHECK_THAT(plan.stop_reason(), Catch::Contains("--abort-latency"));
}

TEST_CASE("the ramp ends at --max-rate when nothing trips") {
  step_plan_options o;
  o.start_rate = 1000;
  o.growth = 2;
  o.max_rate = 3000;
  o.repeats = 1;
  step_plan plan(o);
  auto seen = run(plan, [](double) { return 0.001; });
  std::vector<std::pair<double, int>> want = {{1000, 0}, {2000, 0}, {3000, 0}};
  CHECK(seen == want);
  CHECK_THAT(plan.stop_reason(), Catch::Contains("--max-rate"));
}

TEST_CASE("a step stops early when its errors pass --max-errors or its p99 --abort-latency") {
  step_plan_options o;
  o.rates = {100};
  o.max_errors = 0.01;
  o.abort_latency = 0.6;
  step_plan plan(o);
  CHECK(plan.abort_reason(0.010, 0.0).empty());
  CHECK(plan.abort_reason(0.010, 0.011) != "");
  CHECK(plan.abort_reason(0.700, 0.0) != "");
}

TEST_CASE("an SLO is read as a percentile and a latency with units") {
  using headroom::parse_slo;
  auto s = parse_slo("p99=60ms");
  CHECK(s.quantile == Approx(0.99));
  CHECK(s.latency == Approx(0.060));
  CHECK(s.text() == "p99 < 60ms");
  CHECK(parse_slo("p99.9=0.1").quantile == Approx(0.999));
  CHECK(parse_slo("p50=5ms").name() == "p50");
  CHECK_THROWS_WITH(parse_slo("99=60ms"), Catch::Contains("p99=60ms"));
  CHECK_THROWS_WITH(parse_slo("p100=60ms"), Catch::Contains("(0, 100)"));
  CHECK_THROWS_WITH(parse_slo("p99=fast"), Catch::Contains("not a duration"));
  CHECK_THROWS_WITH(parse_slo("p99=-1ms"), Catch::Contains("must be > 0"));
}
