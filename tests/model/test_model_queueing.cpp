// The request-path model reduced to textbook queues (no pool, one station), checked against
// the exact results of QUEUEING.md. Each figure must lie inside the simulator's own 99 %
// interval and within 3 % of the exact value; replications are added until the interval is
// within +-1.2 % (or a cap), so that a 3 % miss means a wrong model, not bad luck.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <vector>

#include "prediction.hpp"
#include "queueing_formulas.hpp"

using namespace headroom;

namespace {

// Workers = c servers FCFS; the query's delay is the service time; nothing else costs time.
scenario fcfs_queue(int c, double lambda, distribution service) {
  scenario s;
  s.use_pool = false;
  s.workers = c;
  s.arrivals.rate = lambda;
  s.query_delay = std::move(service);
  s.run.requests = 200000;
  s.run.warmup_requests = 20000;
  s.run.confidence = 0.99;
  return s;
}

// One core, unlimited workers, all service as CPU demand: M/G/1 processor sharing.
scenario ps_queue(double lambda, distribution service) {
  scenario s;
  s.use_pool = false;
  s.cores = 1;
  s.arrivals.rate = lambda;
  s.parse_cpu = std::move(service);
  s.run.requests = 200000;
  s.run.warmup_requests = 20000;
  s.run.confidence = 0.99;
  return s;
}

using figure = std::function<estimate(const prediction&)>;

// Adds replications (8 at a time, both cores) until every figure's interval is within +-1.2 %.
prediction run_to_precision(const scenario& s, const std::vector<figure>& figures, int cap = 96) {
  std::vector<replication_result> reps;
  prediction p;
  for (;;) {
    auto batch = run_replications(s, reps.size(), reps.size() + 8, 0);
    for (auto& r : batch) reps.push_back(std::move(r));
    p = combine(s, reps);
    bool tight = true;
    for (const auto& f : figures) tight = tight && f(p).relative_half_width() <= 0.012;
    if (tight || static_cast<int>(reps.size()) >= cap) return p;
  }
}

void check_exact(const char* what, const estimate& e, double exact) {
  INFO(what << ": simulated " << e.value << " [" << e.ci_low << ", " << e.ci_high << "], exact "
            << exact);
  CHECK(e.has_ci);
  CHECK(e.ci_low <= exact);
  CHECK(exact <= e.ci_high);
  CHECK(e.value == Approx(exact).epsilon(0.03));
}

// Little's law L = lambda W on every stable run. Within 1 %: the windows' edges (requests
// in flight when measuring starts or stops) are the only difference, a few in 200,000.
void check_little(const prediction& p) {
  REQUIRE(p.stable);
  double lw = p.arrival_rate.value * p.mean_sojourn.value;
  INFO("L = " << p.mean_in_system.value << ", lambda W = " << lw);
  CHECK(p.mean_in_system.value == Approx(lw).epsilon(0.01));
}

const figure mean_wait = [](const prediction& p) { return p.phases[phase_queue].mean; };
const figure p99_wait = [](const prediction& p) { return p.phases[phase_queue].p99; };
const figure mean_total = [](const prediction& p) { return p.phases[phase_total].mean; };
const figure p99_total = [](const prediction& p) { return p.phases[phase_total].p99; };

}  // namespace

TEST_CASE(
    "M/M/c mean wait and p99 response time match Erlang C for c = 1, 2, 8 at rho = 0.5, 0.8, 0.9") {
  for (int c : {1, 2, 8}) {
    for (double rho : {0.5, 0.8, 0.9}) {
      DYNAMIC_SECTION("c = " << c << ", rho = " << rho) {
        exact::mmc q{c, rho * c, 1.0};
        scenario s = fcfs_queue(c, q.lambda, distribution::exponential(1.0));
        prediction p = run_to_precision(s, {mean_wait, p99_total});
        check_exact("mean wait", p.phases[phase_queue].mean, q.mean_wait());
        check_exact("p99 response", p.phases[phase_total].p99, q.response_quantile(0.99));
        check_little(p);
      }
    }
  }
}

TEST_CASE("the M/M/c formulas reproduce QUEUEING.md's check values") {
  // Guards the test's own arithmetic (bisection, Erlang C) against the document.
  CHECK(exact::mmc{1, 0.8, 1}.response_quantile(0.99) == Approx(23.03).epsilon(1e-3));
  CHECK(exact::erlang_c(8, 6.4) == Approx(0.4576).epsilon(1e-3));
  CHECK(exact::mmc{8, 6.4, 1}.response_quantile(0.99) == Approx(5.152).epsilon(1e-3));
  CHECK(exact::mmc{32, 28.8, 1}.response_quantile(0.99) == Approx(4.794).epsilon(1e-3));
  double md1 = exact::invert([](double t) { return exact::md1_wait_cdf(t, 0.8, 1.0); }, 0.99, 5);
  CHECK(md1 == Approx(10.356).epsilon(1e-3));
}

TEST_CASE("M/D/1 p99 wait matches Erlang's formula at rho = 0.5 and 0.8") {
  for (double rho : {0.5, 0.8}) {
    DYNAMIC_SECTION("rho = " << rho) {
      scenario s = fcfs_queue(1, rho, distribution::deterministic(1.0));
      prediction p = run_to_precision(s, {p99_wait});
      double exact_p99 =
          exact::invert([rho](double t) { return exact::md1_wait_cdf(t, rho, 1.0); }, 0.99, 5);
      check_exact("p99 wait", p.phases[phase_queue].p99, exact_p99);
      check_little(p);
    }
  }
}

TEST_CASE("M/G/1 with lognormal service has the Pollaczek-Khinchine mean wait") {
  distribution service = distribution::lognormal_mean_cv(1.0, 1.0);
  double rho = 0.7, lambda = rho / service.mean();
  scenario s = fcfs_queue(1, lambda, service);
  prediction p = run_to_precision(s, {mean_wait});
  double pk = lambda * service.second_moment() / (2 * (1 - rho));
  check_exact("mean wait", p.phases[phase_queue].mean, pk);
  check_little(p);
}

TEST_CASE("M/G/1-PS mean response is E[S]/(1 - rho) whatever the service distribution") {
  // Insensitivity: deterministic (cv 0) and a two-phase hyperexponential (cv ~ 2.2).
  distribution deterministic = distribution::deterministic(1.0);
  distribution hyper = distribution::mixture(
      {0.9, 0.1}, {distribution::exponential(0.5), distribution::exponential(5.5)});
  for (const distribution* d : {&deterministic, &hyper}) {
    DYNAMIC_SECTION(d->describe()) {
      double rho = 0.7, lambda = rho / d->mean();
      scenario s = ps_queue(lambda, *d);
      prediction p = run_to_precision(s, {mean_total});
      check_exact("mean response", p.phases[phase_total].mean, d->mean() / (1 - rho));
      check_little(p);
    }
  }
}
