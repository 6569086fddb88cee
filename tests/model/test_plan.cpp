// headroom plan (issue 9): the capacity search against Erlang C, the N+k and zone arithmetic,
// an unreachable SLO and a database that saturates first refused in plain words, the plan's
// JSON contract (headroom-plan/1) and the command end to end.
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <string>

#include "../calibrate/headroom_cli.hpp"
#include "plan.hpp"
#include "plan_report.hpp"
#include "queueing_formulas.hpp"
#include "scenario.hpp"
#include "slo.hpp"

using namespace headroom;
namespace json = boost::json;

namespace {

// M/M/c: Poisson arrivals, c workers, exponential service as a pure delay. No pool, no CPU
// demand, no run-to-run variability: nothing but the queue Erlang C describes.
scenario mmc(int c, double mean_service) {
  scenario s;
  s.name = "M/M/" + std::to_string(c);
  s.arrivals.process = arrival_process::poisson;
  s.arrivals.rate = 1;
  s.use_pool = false;
  s.workers = c;
  s.query_delay = distribution::exponential(mean_service);
  s.speed_sigma = 0;
  s.delay_sigma = 0;
  return s;
}

plan_request request(double target, const std::string& slo) {
  plan_request r;
  r.target_rps = target;
  r.slo = parse_slo(slo);
  return r;
}

// The arrival rate at which M/M/c's sojourn-time quantile q equals `latency` (bisection: the
// quantile rises with the rate).
double erlang_rate(int c, double mu, double q, double latency) {
  double lo = 0.01 * c * mu, hi = 0.9999 * c * mu;
  for (int i = 0; i < 100; ++i) {
    double mid = 0.5 * (lo + hi);
    (exact::mmc{c, mid, mu}.response_quantile(q) < latency ? lo : hi) = mid;
  }
  return lo;
}

}  // namespace

TEST_CASE("an M/M/c instance's capacity is the rate at which Erlang C's p99 meets the SLO",
          "[slow]") {
  // Two workers, 1 ms mean service, p99 < 10 ms. Windows of 100 s (about 150,000 requests)
  // without speed or delay variability make one window's p99 sharp (it varies ~2 % between
  // windows, the capacity a third of that), so P(window meets SLO) falls from 1 to 0 within
  // about 1 % of the rate where the long-run p99 crosses 10 ms: that rate is the answer, and
  // 3 % covers the search's 1 % precision plus the 90 % confidence's step below the median.
  const double mu = 1000, latency = 0.010;
  scenario s = mmc(2, 1 / mu);
  plan_request r = request(1000, "p99=10ms");
  r.window = 100;
  r.runs = 20;
  r.precision = 0.01;
  capacity_estimate c = find_capacity(plan_scenario(s, r), r, true);
  const double expected = erlang_rate(2, mu, 0.99, latency);
  INFO("capacity " << c.rps << " (" << c.low << " .. " << c.high << "), Erlang C " << expected);
  REQUIRE(c.found);
  CHECK(c.rps == Approx(expected).epsilon(0.03));
  // The interval holds the estimate and is no wider than the step around the knee.
  CHECK(c.high >= c.rps);
  CHECK(c.high <= expected * 1.05);
  // Common random numbers: a rate above the capacity never meets more windows than one below.
  for (const auto& below : c.evaluations)
    for (const auto& above : c.evaluations)
      if (below.rate < above.rate && below.runs == above.runs && below.rate >= 0.5 * expected)
        CHECK(below.met >= above.met - 2);  // 2 of 20: the windows' own noise at one rate
}

TEST_CASE("instances are ceil(target / capacity) plus the spare ones") {
  // The study's arithmetic: 10,000 rps / 3,000 rps per instance = 4, + 1 spare = 5.
  instance_count c = count_instances(10000, 3000, 1, 1, false);
  CHECK(c.needed == 4);
  CHECK(c.with_redundancy == 5);
  CHECK(c.instances == 5);
  REQUIRE(c.arithmetic.size() == 1);
  CHECK(c.arithmetic[0] == "instances = ceil(10,000 / 3,000) + 1 = 4 + 1 = 5");
  // An exact division needs no extra instance.
  CHECK(count_instances(10000, 2500, 0, 1, false).instances == 4);
  CHECK(count_instances(10000, 2500, 2, 1, false).instances == 6);
  CHECK_THROWS_AS(count_instances(10000, 0, 1, 1, false), std::invalid_argument);
}

TEST_CASE("zones round the instances up to a multiple, and a zone's loss can be survived") {
  // 5 instances over 3 zones: 2 per zone, 6 in all.
  instance_count z = count_instances(10000, 3000, 1, 3, false);
  CHECK(z.instances == 6);
  CHECK(z.per_zone == 2);
  // 10 needed over 3 zones: rounding alone gives 4 per zone (12), and losing a zone leaves 8;
  // surviving that needs 10 in the two left, 5 per zone (15).
  CHECK(count_instances(10000, 1000, 0, 3, false).instances == 12);
  instance_count loss = count_instances(10000, 1000, 0, 3, true);
  CHECK(loss.instances == 15);
  CHECK(loss.per_zone == 5);
  CHECK(loss.instances - loss.per_zone >= loss.needed);
  // When redundancy already covers a zone's loss, nothing more is added: 4 + 2 = 6 over 2
  // zones is 3 per zone, and losing one leaves 3 < 4, so 4 per zone.
  CHECK(count_instances(10000, 2500, 2, 2, false).instances == 6);
  CHECK(count_instances(10000, 2500, 2, 2, true).instances == 8);
  CHECK_THROWS_AS(count_instances(10000, 2500, 0, 1, true), std::invalid_argument);
}

TEST_CASE("an unreachable SLO is refused in plain words with the latency at the lowest rate") {
  // A constant 3 ms service: no window's p99 is under 1 ms at any rate.
  scenario s = mmc(2, 0.003);
  s.query_delay = distribution::deterministic(0.003);
  plan_request r = request(1000, "p99=1ms");
  r.window = 10;
  r.runs = 10;
  plan p = make_plan(s, r);
  CHECK_FALSE(p.feasible);
  CHECK_FALSE(p.chosen.capacity.found);
  INFO(p.reason);
  CHECK(p.reason.find("no rate meets p99 < 1ms") == 0);
  // 3 ms as the latency histogram keeps it (0.4 % buckets): "3.01 ms".
  CHECK(p.reason.find("a window's p99 is 3.0") != std::string::npos);
  json::value j = plan_to_json(p);
  CHECK(j.at("feasible").as_bool() == false);
  CHECK(j.at("capacity").is_null());
  CHECK(j.at("instances").is_null());
  CHECK(j.at("reason").as_string() == p.reason);
}

TEST_CASE("a co-located plan whose pool wants more than max_connections is refused, modelled") {
  // The study's deployment: each instance with its own PostgreSQL. Go's unlimited pool
  // (max_open 0, max_idle 2) in front of 8 workers holding a connection 1 ms each: near an
  // instance's capacity (several thousand req/s) it has more than 4 connections in use at
  // once, and a database allowing 4 refuses the dials past them. The simulation makes those
  // requests fail; the plan says so and is refused.
  scenario s = mmc(8, 0.001);
  s.use_pool = true;
  s.pool.max_open = 0;
  s.pool.max_idle = 2;
  plan_request r = request(100000, "p99=20ms");
  r.window = 5;
  r.runs = 10;
  r.database_max_connections = 4;
  plan p = make_plan(s, r);
  REQUIRE(p.chosen.count);
  INFO(p.reason);
  CHECK_FALSE(p.split);
  CHECK_FALSE(p.feasible);
  CHECK(p.database.bottleneck);
  REQUIRE(p.database.refused_dials_per_s);
  CHECK(*p.database.refused_dials_per_s > 0);
  // One database's connections, never more than it allows plus the dials it is refusing.
  REQUIRE(p.database.connections_peak);
  CHECK(p.reason.find("the database refuses connections first: each instance's pool (max_open "
                      "0, unlimited) wants more than its database's max_connections 4") == 0);
  CHECK(plan_to_json(p).at("database").at("refused_dials_per_s").as_double() > 0);
  // The same pool under PostgreSQL's default 100: nothing refused, the plan stands.
  r.database_max_connections = 100;
  plan roomy = make_plan(s, r);
  INFO(roomy.reason);
  CHECK(roomy.feasible);
  REQUIRE(roomy.database.refused_dials_per_s);
  CHECK(*roomy.database.refused_dials_per_s == 0);
  CHECK(*roomy.database.connections_peak <= 100);
}

TEST_CASE("the plan's JSON has every field of headroom-plan/1 with its type") {
  scenario s = mmc(2, 0.001);
  s.use_pool = true;  // a pool, so the pool and dial figures are numbers
  s.pool.max_open = 4;
  s.pool.max_idle = 4;
  plan_request r = request(5000, "p99=10ms");
  r.window = 10;
  r.runs = 30;  // 25 or more, so that 30 of 30 windows make a rate sure: the low end is known
  r.redundancy = 1;
  r.zones = 2;
  plan p = make_plan(s, r);
  REQUIRE(p.feasible);
  json::value j = plan_to_json(p);
  const json::object& o = j.as_object();
  CHECK(o.at("format").as_string() == "headroom-plan/1");
  CHECK(o.at("target_rps").as_double() == 5000);
  const json::object& slo = o.at("slo").as_object();
  CHECK(slo.at("quantile").as_double() == Approx(0.99).epsilon(1e-12));
  CHECK(slo.at("latency").as_double() == Approx(0.010).epsilon(1e-12));
  CHECK(slo.at("text").as_string() == "p99=10ms");
  CHECK(o.at("confidence").as_double() == Approx(0.9).epsilon(1e-12));
  CHECK(o.at("redundancy").as_int64() == 1);
  CHECK(o.at("zones").as_int64() == 2);
  CHECK(o.at("feasible").as_bool());
  CHECK(o.at("reason").is_null());
  CHECK(o.at("pool").at("max_open").as_int64() == 4);
  CHECK(o.at("pool").at("max_idle").as_int64() == 4);
  const json::object& cap = o.at("capacity").as_object();
  for (const char* k : {"rps", "low", "high"}) CHECK(cap.at(k).is_double());
  CHECK(cap.at("low").as_double() <= cap.at("rps").as_double());
  CHECK(cap.at("rps").as_double() <= cap.at("high").as_double());
  const std::int64_t n = o.at("instances").as_int64();
  // N+k with zone rounding, from the capacity in the same file.
  const auto needed = static_cast<std::int64_t>(std::ceil(5000 / cap.at("rps").as_double()));
  CHECK(n == (needed + 1 + 1) / 2 * 2);
  const json::object& at = o.at("at_target").as_object();
  CHECK(at.at("rps_per_instance").as_double() == Approx(5000.0 / static_cast<double>(n)));
  for (const char* k : {"p99", "p99_low", "p99_high", "service_cpu", "database_cpu", "dials_per_s"})
    CHECK(at.at(k).is_double());
  CHECK(at.at("p99_low").as_double() <= at.at("p99").as_double());
  CHECK(at.at("p99").as_double() <= at.at("p99_high").as_double());
  const json::object& db = o.at("database").as_object();
  for (const char* k : {"cores", "cpu_at_target", "connections_peak", "max_connections",
                        "dials_per_s", "refused_dials_per_s", "bottleneck", "cores_needed"})
    CHECK(db.contains(k));
  // Co-located: each instance's own database holds at most its pool's 4 connections.
  CHECK(db.at("connections_peak").as_double() >= 1);
  CHECK(db.at("connections_peak").as_double() <= 4);
  CHECK(db.at("refused_dials_per_s").as_double() == 0);
  CHECK(db.at("max_connections").as_int64() == 100);
  CHECK(db.at("bottleneck").is_bool());
  CHECK(db.at("dials_per_s").is_double());
  CHECK(o.at("recommendation").is_null());
  const json::array& summary = o.at("summary").as_array();
  REQUIRE(summary.size() >= 3);
  for (const auto& line : summary) CHECK(line.is_string());
}

TEST_CASE("headroom plan prints the arithmetic, writes the JSON and exits 3 when infeasible") {
  const std::string file = std::string(HEADROOM_TEST_DIR) + "/plan_mm2.json";
  auto ok = test::run_cli(HEADROOM_CLI,
                          {"plan", "--scenario", file, "--target-rps", "10000", "--slo", "p99=10ms",
                           "--redundancy", "1", "--window", "20s", "--runs", "10", "--json", "-"});
  INFO(ok.err);
  REQUIRE(ok.exit_code == 0);
  json::value j = json::parse(ok.out);
  const double capacity = j.at("capacity").at("rps").as_double();
  const auto needed = static_cast<std::int64_t>(std::ceil(10000 / capacity));
  CHECK(j.at("instances").as_int64() == needed + 1);
  CHECK(j.at("summary").at(2).as_string().find("instances = ceil(10,000 / ") == 0);
  // Progress goes to stderr, one line per rate simulated.
  CHECK(ok.err.find("windows meet p99 < 10ms") != std::string::npos);

  auto text =
      test::run_cli(HEADROOM_CLI, {"plan", "--scenario", file, "--target-rps", "10000", "--slo",
                                   "p99=10ms", "--window", "20s", "--runs", "10", "--quiet"});
  CHECK(text.exit_code == 0);
  CHECK(text.err.empty());
  CHECK(text.out.find("capacity per instance: ") != std::string::npos);
  CHECK(text.out.find("instances = ceil(10,000 / ") != std::string::npos);

  auto unreachable =
      test::run_cli(HEADROOM_CLI, {"plan", "--scenario", file, "--target-rps", "100", "--slo",
                                   "p99=100us", "--window", "10s", "--runs", "10", "--quiet"});
  CHECK(unreachable.exit_code == 3);
  CHECK(unreachable.out.find("no plan: no rate meets p99 < 100us") != std::string::npos);

  auto bad = test::run_cli(HEADROOM_CLI,
                           {"plan", "--scenario", file, "--target-rps", "100", "--slo", "p42"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.rfind("headroom plan: --slo: not an SLO: 'p42'", 0) == 0);
  CHECK(bad.err.find('\n') == bad.err.size() - 1);  // one line
  // One parser, one message: predict says exactly what plan says (slo_flag).
  auto bad_predict = test::run_cli(HEADROOM_CLI, {"predict", "--scenario", file, "--rate", "100",
                                                  "--slo", "p42"});
  CHECK(bad_predict.exit_code == 2);
  CHECK(bad_predict.err.substr(std::string("headroom predict: ").size()) ==
        bad.err.substr(std::string("headroom plan: ").size()));
}

TEST_CASE("the pool search of --optimize-pool finds that keeping idle connections removes the dials") {
  // Four workers, 1 ms queries, and a 20 ms dial (pure delay): with max_idle 2 and up to four
  // requests in flight, released connections are closed and the next requests dial, so the
  // p99 passes 10 ms at a low rate. Any setting that keeps four or more idle connections
  // stops dialing and serves up to M/M/4's knee: the best setting keeps at least 8 idle and
  // plans fewer instances. Short windows keep the 12-setting grid quick; the comparison is
  // between capacities apart by far more than their noise.
  scenario s = mmc(4, 0.001);
  s.use_pool = true;
  s.pool.max_open = 0;
  s.pool.max_idle = 2;
  s.dial_delay = distribution::deterministic(0.020);
  plan_request r = request(20000, "p99=10ms");
  r.window = 5;
  r.window_warmup = 1;
  r.runs = 10;
  r.optimize_pool = true;
  plan p = make_plan(s, r);
  REQUIRE(p.chosen.capacity.found);
  REQUIRE(p.recommendation);
  INFO(p.summary.back());
  CHECK(p.recommendation->pool.max_idle >= 8);
  CHECK(p.recommendation->capacity.rps > 2 * p.chosen.capacity.rps);
  CHECK(p.recommendation->count->instances < p.chosen.count->instances);
  CHECK(p.summary.back().find("max_idle 2 -> ") != std::string::npos);
  json::value j = plan_to_json(p);
  CHECK(j.at("recommendation").at("max_idle").as_int64() == p.recommendation->pool.max_idle);
  CHECK(j.at("recommendation").at("instances").as_int64() == p.recommendation->count->instances);
}

TEST_CASE("a split plan whose database saturates first is refused with the cores it needs") {
  // Each instance on its own 2 cores; the queries' database CPU (0.1 ms each) on one shared
  // database core. One instance alone serves about M/M/4's knee (4 workers, ~1.1 ms held) and
  // uses a quarter of the database's core there; 20,000 req/s need about nine instances and
  // 2 database cores of CPU: the database, not the instances, saturates first. Its demand is
  // 20,000 x 0.1 ms = 2.0 cores, so staying under 70 % needs ceil(2.0 / 0.7) = 3 cores (the
  // measured demand is within a few % of 2.0: 2.0 / 0.7 = 2.86 stays below 3).
  scenario s = mmc(4, 0.001);
  s.use_pool = true;
  s.pool.max_open = 4;
  s.pool.max_idle = 4;
  s.query_db_cpu = distribution::deterministic(0.0001);
  plan_request r = request(20000, "p99=20ms");
  r.window = 5;
  r.window_warmup = 1;
  r.runs = 10;
  r.service_cores = 2;
  r.database_cores = 1;
  r.database_rtt = 0;
  plan p = make_plan(s, r);
  REQUIRE(p.chosen.count);
  INFO(p.reason);
  CHECK(p.split);
  CHECK_FALSE(p.feasible);
  CHECK(p.database.bottleneck);
  CHECK(p.reason.find("the database saturates first at 20,000 req/s") == 0);
  REQUIRE(p.database.cores_needed);
  CHECK(*p.database.cores_needed == 3);
  json::value j = plan_to_json(p);
  CHECK(j.at("database").at("bottleneck").as_bool());
  CHECK(j.at("database").at("cores").as_double() == 1);
  CHECK(j.at("database").at("cores_needed").as_double() == 3);
}

TEST_CASE("a split plan with database room to spare reports its CPU, connections and dials") {
  // The same deployment on 4 database cores: 2 cores of demand is 50 %, under the 70 % aimed
  // at, and 9 or so instances x 4 connections stay under max_connections 100.
  scenario s = mmc(4, 0.001);
  s.use_pool = true;
  s.pool.max_open = 4;
  s.pool.max_idle = 4;
  s.query_db_cpu = distribution::deterministic(0.0001);
  plan_request r = request(20000, "p99=20ms");
  r.window = 5;
  r.window_warmup = 1;
  r.runs = 10;
  r.service_cores = 2;
  r.database_cores = 4;
  r.database_rtt = 0;
  plan p = make_plan(s, r);
  INFO(p.reason);
  REQUIRE(p.feasible);
  CHECK_FALSE(p.database.bottleneck);
  REQUIRE(p.database.cpu_at_target);
  // 20,000 x 0.1 ms over 4 cores: 50 %, within the simulation's few % of noise.
  CHECK(*p.database.cpu_at_target == Approx(0.5).epsilon(0.05));
  REQUIRE(p.database.connections_peak);
  CHECK(*p.database.connections_peak <= 4.0 * p.chosen.count->instances);
  CHECK(*p.database.cores_needed == 3);
}

TEST_CASE("the plan's speed spread: capacity and instances at the median and slow end of speed") {
  // One core, every request 1 ms of CPU, evenly spaced: latency is the 1 ms times the machine's
  // speed factor f until the core saturates at 1 / (1 ms x f), so each fixed speed's capacity
  // is known exactly. One run's factor is lognormal with mean 1 and sigma 0.3: its median is
  // exp(-0.045) = 0.956, its 95th percentile exp(-0.045 + 1.645 x 0.3) = 1.566.
  scenario s;
  s.name = "D/D/1 on CPU";
  s.cores = 1;
  s.arrivals.process = arrival_process::constant;
  s.arrivals.rate = 1;
  s.use_pool = false;
  s.workers = 0;
  s.parse_cpu = distribution::deterministic(0.001);
  s.speed_sigma = 0.3;
  plan_request r = request(10000, "p99=50ms");
  r.window = 10;
  r.window_warmup = 1;
  r.redundancy = 1;
  plan p = make_plan(s, r);
  REQUIRE(p.feasible);
  REQUIRE(p.speed_spread.size() == 2);
  const plan::speed_case& median = p.speed_spread[0];
  const plan::speed_case& slow = p.speed_spread[1];
  CHECK(median.name == "median");
  CHECK(median.factor == Approx(0.956).epsilon(0.001));
  CHECK(slow.factor == Approx(1.566).epsilon(0.001));
  REQUIRE(median.count);
  REQUIRE(slow.count);
  CHECK(median.capacity.rps == Approx(1000 / 0.956).epsilon(0.05));
  CHECK(slow.capacity.rps == Approx(1000 / 1.566).epsilon(0.05));
  CHECK(slow.capacity.rps <= p.chosen.capacity.rps);
  CHECK(p.chosen.capacity.rps <= median.capacity.rps);
  CHECK(median.count->instances == 11);  // ceil(10,000 / 1,046) + 1
  CHECK(slow.count->instances == 17);    // ceil(10,000 / 639) + 1
  bool said = false;
  for (const std::string& line : p.summary) said = said || line.find("slow end") != std::string::npos;
  CHECK(said);
  const json::value o = plan_to_json(p);
  REQUIRE(o.at("speed_spread").as_array().size() == 2);
  CHECK(o.at("speed_spread").as_array()[1].at("instances").as_int64() == 17);

  // A sigma from few repeats (3 degrees of freedom) is drawn from Student's t, and so is the slow
  // end: exp(-0.045 + t(0.95, 3) x 0.3) = exp(-0.045 + 2.353 x 0.3) = 1.937; the median stays.
  s.speed_sigma_dof = 3;
  const plan few = make_plan(s, r);
  REQUIRE(few.speed_spread.size() == 2);
  CHECK(few.speed_spread[0].factor == Approx(0.956).epsilon(0.001));
  CHECK(few.speed_spread[1].factor == Approx(1.937).epsilon(0.001));

  s.speed_sigma = 0;  // no spread: nothing to say
  CHECK(make_plan(s, r).speed_spread.empty());
}
