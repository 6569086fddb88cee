// What one `headroom load` run measured, and its reports: text, JSON (lossless, mergeable),
// HdrHistogram percentile distribution, per-second CSV.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "latency_histogram.hpp"

namespace headroom::calibrate {

// One second of the measured part, by completion time (sent: by actual send time).
struct second_stats {
  std::uint64_t sent = 0;
  std::uint64_t completed = 0;
  std::uint64_t errors = 0;      // transport errors and HTTP status >= 400
  latency_histogram latency{2};  // successful responses; 2 digits: enough for a per-second p99,
                                 // 1/8 of the memory
};

struct load_result {
  // What was asked.
  std::vector<std::string> targets;
  std::string method = "GET";
  std::string schedule;  // a sentence, e.g. "200 rps for 10 s"
  std::string arrivals = "uniform";
  double offered_rate = 0;  // mean intended rate over the measured part (summed over merged runs)
  double duration = 0;      // measured part of the schedule, seconds
  double warmup = 0;
  int threads = 1;
  int max_connections = 0;
  double timeout = 0;
  int runs = 1;  // > 1 after `headroom load merge`

  // What happened (warmup excluded).
  std::uint64_t scheduled = 0;   // intended sends whose time came
  std::uint64_t sent = 0;        // handed to a connection
  std::uint64_t completed = 0;   // a full HTTP response came back in time (any status)
  std::uint64_t late = 0;        // found every connection busy at their intended time and waited
  std::uint64_t unsent = 0;      // still waiting for a connection when the run ended
  std::uint64_t unfinished = 0;  // in flight when the run was stopped
  std::uint64_t retries = 0;     // resent once after the server closed a keep-alive connection
  std::uint64_t transport_errors = 0;
  bool interrupted = false;
  double elapsed = 0;  // measured start to last completion (at least `duration` unless stopped)
  std::map<int, std::uint64_t> status_counts;
  std::map<std::string, std::uint64_t> error_counts;  // error kind -> count
  // Two latency sets, both from the intended send time (what a user waits):
  latency_histogram latency;      // successful responses (status < 400)
  latency_histogram latency_all;  // every request: responses of any status at their latency, and
                                  // the `censored` ones at the time they had waited
  // Requests that got no response (timed out, transport error, unsent or unfinished at the end):
  // their value in latency_all is a lower bound, so while any exist, so are its percentiles.
  std::uint64_t censored = 0;
  latency_histogram service_time;  // from the actual send time (what the server took), every
                                   // response in time
  latency_histogram send_delay;    // actual minus intended send time
  std::map<std::string, latency_histogram> phases;  // from Server-Timing
  std::uint64_t server_timing_responses = 0;
  std::uint64_t server_timing_malformed = 0;
  std::uint64_t connections_opened = 0;
  std::vector<second_stats> per_second;
  double cpu_user = 0;  // the generator's own CPU (getrusage), seconds
  double cpu_system = 0;

  double throughput() const;        // completed / elapsed
  std::uint64_t failed() const;     // transport errors + responses with status >= 400
  std::uint64_t succeeded() const;  // responses with status < 400
  double cpu_per_1000_requests() const;
};

// Adds `from` into `into` as if both had run at the same time on different machines: counts and
// histograms add, offered rates add, durations take the longer, per-second rows add by index.
void merge_into(load_result& into, const load_result& from);

std::string text_report(const load_result& r);
boost::json::object to_json(const load_result& r);
load_result from_json(const boost::json::value& v);  // throws std::invalid_argument
boost::json::object histogram_to_json(const latency_histogram& h);
latency_histogram histogram_from_json(const boost::json::value& v);

// HdrHistogram's percentile distribution ("Value Percentile TotalCount 1/(1-Percentile)"), the
// format its plotter reads. Values in milliseconds: the plotter labels its axis in milliseconds
// and a person reads the file.
void write_percentile_distribution(std::ostream& out, const latency_histogram& h);
// second,sent,completed,p50_s,p99_s,errors
void write_per_second_csv(std::ostream& out, const load_result& r);

}  // namespace headroom::calibrate
