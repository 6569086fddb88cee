// Tests of load reports: JSON round trip and merging, the HdrHistogram distribution, the CSV.
#include <catch2/catch.hpp>
#include <random>
#include <sstream>

#include "load_report.hpp"

using namespace headroom::calibrate;

namespace {
load_result synthetic_run(std::uint64_t seed, double rate) {
  load_result r;
  r.targets = {"http://127.0.0.1:8080/"};
  r.schedule = "100 rps for 10 s";
  r.offered_rate = rate;
  r.duration = 10;
  r.max_connections = 10;
  r.timeout = 5;
  r.elapsed = 10.01;
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> lat(200.0);
  r.per_second.resize(10);
  // 1,000 responses (990 with status 200, 10 with 503) and 3 timeouts at the 5 s timeout.
  for (int i = 0; i < 1000; ++i) {
    double v = lat(rng);
    if (i < 990) r.latency.record(v);
    r.latency_all.record(v);
    r.service_time.record(v / 2);
    r.send_delay.record(1e-5);
    r.phases["query"].record(v / 4);
    r.per_second[static_cast<std::size_t>(i / 100)].latency.record(v);
    ++r.per_second[static_cast<std::size_t>(i / 100)].completed;
  }
  r.latency_all.record(5.0, 3);
  r.censored = 3;
  r.scheduled = r.sent = 1003;
  r.completed = 1000;
  r.status_counts[200] = 990;
  r.status_counts[503] = 10;
  r.error_counts["timeout"] = 3;
  r.transport_errors = 3;
  r.cpu_user = 0.1;
  r.cpu_system = 0.05;
  return r;
}

load_result through_json(const load_result& r) {
  auto text = boost::json::serialize(to_json(r));
  return from_json(boost::json::parse(text));
}
}  // namespace

TEST_CASE("a JSON report carries the histograms losslessly") {
  auto r = synthetic_run(1, 100);
  auto back = through_json(r);
  CHECK(back.latency.nonzero_counts() == r.latency.nonzero_counts());
  CHECK(back.latency.max() == r.latency.max());
  CHECK(back.latency.mean() == r.latency.mean());
  CHECK(back.latency_all.nonzero_counts() == r.latency_all.nonzero_counts());
  CHECK(back.latency_all.max() == 5.0);
  CHECK(back.censored == 3);
  CHECK(back.phases.at("query").nonzero_counts() == r.phases.at("query").nonzero_counts());
  CHECK(back.per_second.size() == 10);
  CHECK(back.per_second[3].latency.nonzero_counts() == r.per_second[3].latency.nonzero_counts());
  CHECK(back.status_counts == r.status_counts);
  CHECK(back.error_counts == r.error_counts);
  CHECK(back.elapsed == r.elapsed);
  CHECK(back.failed() == 13);
  auto j = to_json(r);
  CHECK(j.at("latency").at("p99_s").as_double() == r.latency.percentile(99));
  CHECK(j.at("latency_all").at("count").as_uint64() == 1003);
  CHECK(j.at("latency_all_is_lower_bound").as_bool());
  CHECK(j.at("requests").at("succeeded").as_uint64() == 990);
}

TEST_CASE("the text report says when the all-requests percentiles are lower bounds") {
  auto r = synthetic_run(1, 100);
  auto text = text_report(r);
  CHECK(text.find("successful requests (status < 400: 990)") != std::string::npos);
  CHECK(text.find("all requests (1003)") != std::string::npos);
  CHECK(text.find("3 censored") != std::string::npos);
  CHECK(text.find("LOWER BOUNDS") != std::string::npos);
  r.latency_all = r.latency;
  r.censored = 0;
  CHECK(text_report(r).find("LOWER BOUNDS") == std::string::npos);
}

TEST_CASE("merging two JSON reports equals merging the runs themselves") {
  auto a = synthetic_run(1, 100);
  auto b = synthetic_run(2, 150);
  load_result direct = a;
  merge_into(direct, b);
  load_result via_json = through_json(a);
  merge_into(via_json, through_json(b));
  CHECK(via_json.runs == 2);
  CHECK(via_json.completed == 2000);
  CHECK(via_json.offered_rate == 250);  // two machines at once offer the sum
  CHECK(via_json.throughput() == Approx(2000 / 10.01));
  CHECK(via_json.status_counts.at(503) == 20);
  CHECK(via_json.latency.nonzero_counts() == direct.latency.nonzero_counts());
  CHECK(via_json.latency.percentile(99.9) == direct.latency.percentile(99.9));
  CHECK(via_json.latency_all.nonzero_counts() == direct.latency_all.nonzero_counts());
  CHECK(via_json.latency_all.total_count() == 2006);
  CHECK(via_json.censored == 6);
  CHECK(via_json.per_second[0].completed == 200);
  CHECK(via_json.cpu_user == Approx(0.2));
  // And the merged histogram is the one that recording both runs' values in one would give.
  latency_histogram both = a.latency;
  both.merge(b.latency);
  CHECK(via_json.latency.nonzero_counts() == both.nonzero_counts());
  latency_histogram all_of_both = a.latency_all;
  all_of_both.merge(b.latency_all);
  CHECK(via_json.latency_all.nonzero_counts() == all_of_both.nonzero_counts());
}

TEST_CASE("a report that is not a headroom load report is refused with a reason") {
  CHECK_THROWS_AS(from_json(boost::json::parse("{}")), std::invalid_argument);
  CHECK_THROWS_AS(from_json(boost::json::parse(R"({"format":"other"})")), std::invalid_argument);
  // Version 1 mixed failed responses into `latency`: merging it with version 2 would be wrong.
  auto old = to_json(synthetic_run(1, 100));
  old["format"] = "headroom-load/1";
  CHECK_THROWS_AS(from_json(old), std::invalid_argument);
  auto j = to_json(synthetic_run(1, 100));
  j["latency"].as_object()["count"] = 5;  // buckets no longer add up
  CHECK_THROWS_AS(from_json(j), std::invalid_argument);
}

// Found with the load_report fuzz target (tests/fuzz/regressions/load_report/runs_overflow.json):
// two reports claiming 2147483647 runs each overflowed the merged int, undefined behaviour.
TEST_CASE("a report with more runs, threads or connections than an int can add up is refused") {
  for (const char* key : {"runs", "threads", "max_connections"}) {
    auto j = to_json(synthetic_run(1, 100));
    j[key] = 2147483647;
    CHECK_THROWS_WITH(from_json(j), Catch::Contains(key) && Catch::Contains("more than 1000000"));
    j[key] = 1000000;  // the bound itself is a valid report, and two of them merge
    auto r = from_json(j);
    merge_into(r, from_json(j));
    CHECK(to_json(r).at(key).as_int64() == 2000000);
  }
}

TEST_CASE("the percentile distribution has HdrHistogram's columns and footer") {
  latency_histogram h;
  for (int i = 1; i <= 1000; ++i) h.record(i * 1e-3);  // 1 ms .. 1 s
  std::ostringstream out;
  write_percentile_distribution(out, h);
  std::string text = out.str();
  CHECK(text.rfind("       Value     Percentile TotalCount 1/(1-Percentile)\n\n", 0) == 0);
  CHECK(text.find("       1.000 0.000000000000          1           1.00\n") != std::string::npos);
  // The last line is percentile 1 with no 1/(1-p) column, at the top of the max's bucket.
  CHECK(text.find(" 1.000000000000       1000\n#[Mean") != std::string::npos);
  CHECK(text.find("#[Max     =     1000.000, Total count    =         1000]") != std::string::npos);
  CHECK(text.find("#[Buckets =           22, SubBuckets     =         2048]") != std::string::npos);
  // The 50 % line: 500 values are <= 500 ms (bucket top 500.223 ms at this magnitude).
  CHECK(text.find(" 0.500000000000        500           2.00\n") != std::string::npos);
}

TEST_CASE("the per-second CSV has one row per second") {
  auto r = synthetic_run(1, 100);
  std::ostringstream out;
  write_per_second_csv(out, r);
  std::string text = out.str();
  CHECK(text.rfind("second,sent,completed,p50_s,p99_s,errors\n", 0) == 0);
  CHECK(std::count(text.begin(), text.end(), '\n') == 11);
  CHECK(text.find("\n9,0,100,") != std::string::npos);
}
