// Deployment topology in the model (scenario.deployment): N instances, each with its own pool and
// host, sharing one database host; co-located against split; the database's round trip; the
// shared database's connections and dials; the deployment object in scenario files.
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "prediction.hpp"
#include "prediction_report.hpp"
#include "scenario_json.hpp"

using namespace headroom;

namespace {

// A calibration-like request path (CPU figures of DESIGN.md's warm pool: service ~0.35 ms,
// database 0.5 ms per request) with a warm pool large enough that nothing dials, and no worker
// limit, so utilisations have exact answers: lambda x E[CPU per request] / cores.
constexpr double parse = 0.0001, query_service = 0.0001, release = 0.00005, respond = 0.0001;
constexpr double query_db = 0.0005;
constexpr double service_per_request = parse + query_service + release + respond;

scenario calibration_like(double rate) {
  scenario s;
  s.arrivals.rate = rate;
  s.workers = 0;
  s.wait_timeout = 0;
  s.pool.max_open = 0;
  // Warm: far above the requests ever in flight here, and 5 instances' fit PostgreSQL's
  // default max_connections (100), so the warm start opens them all.
  s.pool.max_idle = 20;
  s.parse_cpu = distribution::exponential(parse);
  s.query_delay = distribution::exponential(0.0002);
  s.query_db_cpu = distribution::exponential(query_db);
  s.query_service_cpu = distribution::exponential(query_service);
  s.release_cpu = distribution::exponential(release);
  s.respond_cpu = distribution::exponential(respond);
  s.dial_fork = distribution::deterministic(0.002);
  s.dial_cpu = distribution::deterministic(0.005);
  s.dial_delay = distribution::deterministic(0.001);
  s.close_db_cpu = distribution::deterministic(0.002);
  s.run.requests = 20000;
  s.run.threads = 2;
  // Every interval below is a 99 % one: the checks are "within the interval", and a wider
  // interval keeps a 1-in-20 miss of a correct model from failing the test.
  s.run.confidence = 0.99;
  return s;
}

scenario split(scenario s, int instances, double service_cores, double database_cores) {
  s.deployment.instances = instances;
  s.deployment.service_cores = service_cores;
  s.deployment.database_cores = database_cores;
  return s;
}

prediction run(const scenario& s, std::uint64_t replications = 10) {
  validate(s);
  return combine(s, run_replications(s, 0, replications, s.run.threads));
}

estimate utilization(const prediction& p, const std::string& name) {
  for (const auto& [n, e] : p.utilization)
    if (n == name) return e;
  FAIL("no utilization named " << name);
  return {};
}

std::string error_of(const std::string& text) {
  try {
    validate(scenario_from_json(boost::json::parse(text)));
  } catch (const scenario_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE(
    "N instances sharing one database load its CPU N times one instance's, as lambda E[db] / "
    "cores") {
  const double per_instance = 300, database_cores = 8;
  prediction one = run(split(calibration_like(per_instance), 1, 2, database_cores));
  prediction five = run(split(calibration_like(5 * per_instance), 5, 2, database_cores));
  REQUIRE(one.stable);
  REQUIRE(five.stable);
  // Nothing dials (the warm pool holds every request in flight), so the database's CPU is the
  // queries' alone.
  REQUIRE(one.pool.dials == 0);
  REQUIRE(five.pool.dials == 0);
  const estimate u1 = utilization(one, "database_cpu"), u5 = utilization(five, "database_cpu");
  // Exact in the model: each request brings query_db of database work whatever the load (no
  // per-runnable cost here), so the busy share is lambda_total x E[db] / cores; each estimate
  // within its own 99 % interval.
  const double analytic_one = per_instance * query_db / database_cores;
  CHECK(u1.value == Approx(analytic_one).margin(u1.half_width()));
  CHECK(u5.value == Approx(5 * analytic_one).margin(u5.half_width()));
  // N times one instance's: within the interval of the difference (independent runs).
  CHECK(u5.value == Approx(5 * u1.value).margin(std::hypot(u5.half_width(), 5 * u1.half_width())));
  // Each instance's own host carries the same share in both (arrivals split evenly).
  const estimate s1 = utilization(one, "service_cpu"), s5 = utilization(five, "service_cpu");
  CHECK(s5.value == Approx(s1.value).margin(std::hypot(s1.half_width(), s5.half_width())));
}

TEST_CASE(
    "the same calibration split onto its own hosts has a lower p99 than co-located on a crowded "
    "2-core machine") {
  // Co-located: 1400 x (0.35 + 0.5 + 0.08 generator) ms = 1.3 of the 2 cores.
  const double rate = 1400;
  scenario colocated_s = calibration_like(rate);
  colocated_s.generator_cpu = distribution::exponential(0.00008);
  colocated_s.cores = 2;
  const double service_cores = 4, database_cores = 4;
  scenario split_s = split(colocated_s, 1, service_cores, database_cores);
  prediction together = run(colocated_s);
  prediction apart = run(split_s);
  REQUIRE(together.stable);
  REQUIRE(apart.stable);
  // Co-located the 2 cores are ~65 % busy (service, database and generator); split, each host
  // has 4 cores and a part of the work: the tail must be clearly shorter, beyond both intervals.
  const estimate& p99_together = together.phases[phase_total].p99;
  const estimate& p99_apart = apart.phases[phase_total].p99;
  INFO("p99 co-located " << p99_together.value * 1000 << " ms, split " << p99_apart.value * 1000
                         << " ms");
  CHECK(p99_apart.ci_high < p99_together.ci_low);
  // The generator's CPU is charged to no host when split (SCENARIO.md), so the service's host
  // carries exactly the service's work: lambda x E[service CPU] / service_cores, and the
  // database's lambda x E[db] / database_cores, within their 99 % intervals.
  const estimate service = utilization(apart, "service_cpu");
  const estimate database = utilization(apart, "database_cpu");
  CHECK(service.value ==
        Approx(rate * service_per_request / service_cores).margin(service.half_width()));
  CHECK(database.value == Approx(rate * query_db / database_cores).margin(database.half_width()));
  // Co-located, the one CPU carries all of it plus the generator's.
  const estimate cpu = utilization(together, "cpu");
  CHECK(cpu.value ==
        Approx(rate * (service_per_request + query_db + 0.00008) / 2).margin(cpu.half_width()));
}

TEST_CASE("the database's round trip adds exactly its value to the query phase at low load") {
  // 50 req/s on 8-core hosts: no host ever has more jobs than cores, so nothing slows anything
  // and the same random draws give the same times but for the round trip.
  scenario near = split(calibration_like(50), 1, 8, 8);
  scenario far = near;
  const double rtt = 0.0005;
  far.deployment.database_rtt = distribution::deterministic(rtt);
  prediction a = run(near), b = run(far);
  REQUIRE(a.stable);
  REQUIRE(b.stable);
  const estimate &qa = a.phases[phase_query].mean, &qb = b.phases[phase_query].mean;
  // Within the interval of the difference (here far tighter: the draws are common).
  CHECK(qb.value - qa.value == Approx(rtt).margin(std::hypot(qa.half_width(), qb.half_width())));
  // The release talks to the database too: it gains the round trip as well.
  CHECK(b.phases[phase_release].mean.value - a.phases[phase_release].mean.value ==
        Approx(rtt).margin(1e-9));  // float rounding only: the release has no CPU contention
}

TEST_CASE("the database's dials per second are the sum of every instance's") {
  // Go's default pool (max_idle 2) at 300 req/s per instance with a 5 ms query: ~1.8 requests
  // in flight per instance, so each instance often finds no idle connection and dials.
  scenario s = split(calibration_like(900), 3, 2, 8);
  s.query_delay = distribution::exponential(0.005);
  s.pool.max_idle = 2;
  for (std::uint64_t rep = 0; rep < 3; ++rep) {
    replication_result r = simulate_replication(s, rep);
    REQUIRE(r.stable);
    REQUIRE(r.pool.dials_by_instance.size() == 3);
    std::uint64_t sum = 0;
    for (std::uint64_t d : r.pool.dials_by_instance) {
      CHECK(d > 0);  // every instance dialed: none is left out of the sum
      sum += d;
    }
    // Exact: the model's count per instance adds up to the dials all pools' own DBStats counted.
    CHECK(sum == r.pool.dials);
    CHECK(sum == r.pool.policy_dials);
  }
  prediction p = run(s, 6);
  REQUIRE(p.stable);
  CHECK(p.pool.dials_per_s.value > 1);
  // The pool's figure is one instance's (the mean): the database sees three of them. Equal up
  // to the rounding of a division.
  CHECK(p.database_dials_per_s.value == Approx(3 * p.pool.dials_per_s.value).epsilon(1e-12));
}

TEST_CASE("with max_open M and N instances the database never holds more than N x M connections") {
  // 4 connections per instance, each held ~1.85 ms at 1,800 req/s per instance: ~3.3 in use
  // on average, so the pools are often full.
  const int max_open = 4, instances = 3;
  scenario s = split(calibration_like(3 * 1800), instances, 2, 8);
  s.query_delay = distribution::exponential(0.0012);
  s.pool.max_open = max_open;
  s.pool.max_idle = max_open;
  for (std::uint64_t rep = 0; rep < 3; ++rep) {
    replication_result r = simulate_replication(s, rep);
    REQUIRE(r.stable);
    REQUIRE(r.pool.waits > 0);  // the limit was reached, so the bound is tested, not idle
    CHECK(r.pool.peak_open == max_open);
    CHECK(r.pool.database_peak_open <= instances * max_open);
    // More than one instance's pool at once: the peak is the sum over instances, not one's.
    CHECK(r.pool.database_peak_open > max_open);
  }
  prediction p = run(s, 4);
  CHECK(p.pool.peak_open == max_open);
  CHECK(p.database_peak_connections <= instances * max_open);
  // 12 connections fit PostgreSQL's default 100; a limit of 10 does not, and predict warns.
  CHECK(database_connections_warning(s, p).empty());
  s.deployment.database_max_connections = 10;
  CHECK(database_connections_warning(s, p).find("max_connections 10") != std::string::npos);
}

TEST_CASE("PostgreSQL refuses dials past max_connections, and those requests fail as Go's do") {
  // Every request holds its connection for a 10 ms query (a pure delay: no CPU queue), 1,000
  // req/s, max_open 0 and a warm pool of 30 kept idle: about 10 connections in use at once,
  // and dials whenever more are needed.
  scenario s = calibration_like(1000);
  s.query_delay = distribution::deterministic(0.010);
  s.pool.max_idle = 30;
  // Cheap forks: the postmaster keeps up with ~500 refused dials a second (at 2 ms each it
  // would not, and the run would be an overload of forks, not of connections).
  s.dial_fork = distribution::deterministic(0.0001);
  prediction roomy = run(s, 4);
  REQUIRE(roomy.stable);
  CHECK(roomy.pool.failed_dials_per_s.value == 0);
  CHECK(roomy.error_rate.value == 0);
  CHECK(database_connections_warning(s, roomy).empty());
  // Five backends at most (the warm start too opens only five): at most 5 / 10 ms = 500
  // queries a second can succeed; the rest find PostgreSQL full, their dial fails, and they are
  // errors (no ErrBadConn retry for a dial).
  s.deployment.database_max_connections = 5;
  for (std::uint64_t rep = 0; rep < 2; ++rep) {
    replication_result r = simulate_replication(s, rep);
    CHECK(r.pool.dial_failures > 0);
    CHECK(r.errors > 0);
    // The model's count of dials and the pool's own agree with failures among them.
    CHECK(r.pool.dials == r.pool.policy_dials);
    // Success throughput is bounded by the five backends (the window's own counts).
    CHECK(static_cast<double>(r.completed) / r.window <= 500 * 1.01);
  }
  prediction full = run(s, 4);
  INFO(prediction_table(s, full));
  CHECK(full.throughput.value <= 500 * 1.01);
  CHECK(full.throughput.value > 400);  // the five are kept busy: dials are refused, not slow
  CHECK(full.pool.failed_dials_per_s.value > 100);
  // Every request either succeeds or failed a dial: nothing else fails here.
  CHECK(full.error_rate.value * 1000 == Approx(full.pool.failed_dials_per_s.value).epsilon(0.05));
  const std::string warning = database_connections_warning(s, full);
  CHECK(warning.find("above its max_connections 5: PostgreSQL refuses the excess, modelled as "
                     "failed dials") != std::string::npos);
}

TEST_CASE("a connection found dead when queried is closed and the query tried again, as in Go") {
  // Each query on a reused connection finds it dead with probability q. Go's loop (and the
  // service's) closes it and tries again: twice from the pool, then on a new connection, which
  // is never dead. In steady state each broken connection is replaced by one dial, and every
  // request makes exactly one try on a reused connection (tries = 1 + broken, fresh tries =
  // dials = broken): so q x rate are broken per second, as many dialed, and none fails. The
  // pool is unbounded (max_open 0), so the third try always dials (with a bound it may wait,
  // be handed a reused connection that is dead too, and fail: Go's rule as well), and cheap
  // dials keep the 8 idle connections enough (no close for max_idle).
  const double q = 0.2, rate = 500;
  scenario s = calibration_like(rate);
  s.pool.max_idle = 8;
  s.dial_fork = distribution::deterministic(0.0001);
  s.dial_cpu = distribution::deterministic(0.0002);
  s.close_db_cpu = distribution::deterministic(0.0001);
  s.deployment.broken_connection_share = q;
  prediction p = run(s, 6);
  INFO(prediction_table(s, p));
  REQUIRE(p.stable);
  CHECK(p.error_rate.value == 0);
  CHECK(p.pool.broken_per_s.value == Approx(q * rate).epsilon(0.05));
  CHECK(p.pool.dials_per_s.value == Approx(p.pool.broken_per_s.value).epsilon(0.05));
  CHECK(p.pool.closes_per_s.value == Approx(p.pool.broken_per_s.value).epsilon(0.05));
  CHECK(p.pool.dials == p.pool.policy_dials);
  CHECK(p.pool.closes == p.pool.policy_closes);
  // Unset, nothing breaks and the pool never dials (8 warm connections, ~1 in use).
  s.deployment.broken_connection_share = 0;
  prediction none = run(s, 2);
  CHECK(none.pool.broken_per_s.value == 0);
  CHECK(none.pool.dials_per_s.value == 0);
  // In the scenario file: read back, written only when set, and validated.
  s.deployment.broken_connection_share = q;
  CHECK(scenario_from_json(scenario_to_json(s)).deployment.broken_connection_share == q);
  scenario unset = s;
  unset.deployment.broken_connection_share = 0;
  CHECK(boost::json::serialize(scenario_to_json(unset)).find("broken") == std::string::npos);
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "deployment": {"broken_connection_share": 1}})") ==
        "deployment.broken_connection_share: must be in [0, 1)");
}

TEST_CASE("a split deployment whose database cannot keep up is refused naming the database") {
  // 20 instances at 500 req/s each: 10,000 x 0.5 ms = 5 cores of queries on a 4-core database,
  // while each instance's 2 cores are only 9 % busy.
  scenario s = split(calibration_like(10000), 20, 2, 4);
  prediction p = predict(s);
  CHECK_FALSE(p.stable);
  CHECK(p.replications == 0);
  CHECK(p.reason.find("database CPU demand 1.25 x capacity") != std::string::npos);
}

TEST_CASE("the deployment object reads back the same from JSON") {
  std::string text = R"({"arrivals": {"rate": 100},
    "deployment": {"instances": 5, "service_cores": 2, "database_cores": 8,
                   "database_rtt": {"type": "constant", "value": 0.0005},
                   "database_max_connections": 300}})";
  scenario s = scenario_from_json(boost::json::parse(text));
  CHECK(s.deployment.instances == 5);
  CHECK(s.deployment.service_cores == 2);
  CHECK(s.deployment.database_cores == 8);
  CHECK(s.deployment.database_rtt.kind == distribution_kind::deterministic);
  CHECK(s.deployment.database_rtt.mean() == 0.0005);
  CHECK(s.deployment.database_max_connections == 300);
  CHECK_FALSE(colocated(s));
  scenario back = scenario_from_json(scenario_to_json(s));
  CHECK(boost::json::serialize(scenario_to_json(back)) ==
        boost::json::serialize(scenario_to_json(s)));
  // Absent: co-located, one instance, PostgreSQL's default max_connections.
  scenario plain = scenario_from_json(boost::json::parse(R"({"arrivals": {"rate": 100}})"));
  CHECK(colocated(plain));
  CHECK(plain.deployment.instances == 1);
  CHECK(plain.deployment.database_max_connections == 100);
}

TEST_CASE("bad deployment fields give one error naming the field") {
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "deployment": {"instances": 0}})") ==
        "deployment.instances: must be >= 1");
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "deployment": {"instances": 2.5}})") ==
        "deployment.instances: must be an integer");
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "deployment": {"service_cores": 2}})") ==
        "deployment.database_cores: must be > 0 in a split deployment (deployment.service_cores "
        "> 0)");
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "deployment": {"service_cores": -1}})")
            .rfind("deployment.service_cores: must be >= 0", 0) == 0);
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "deployment": {"database_rtt": 0.001}})")
            .rfind("deployment.database_rtt: needs deployment.service_cores > 0", 0) == 0);
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "deployment": {"database_cores": 4}})")
            .rfind("deployment.database_cores: needs deployment.service_cores > 0", 0) == 0);
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "deployment": {"database_max_connections": 0}})") ==
        "deployment.database_max_connections: must be >= 1");
  CHECK(error_of(R"({"arrivals": {"rate": 5}, "deployment": {"instance": 3}})") ==
        "deployment.instance: unknown field");
  CHECK(
      error_of(
          R"({"arrivals": {"rate": 5}, "deployment": {"service_cores": 2, "database_cores": 2, "database_rtt": {"type": "exponential"}}})") ==
      "deployment.database_rtt.mean: missing");
}
