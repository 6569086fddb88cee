// Prometheus metrics of the service: per-phase latency histograms, HTTP
// request histograms, the pool's DBStats and process figures, in text format.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pool_policy.hpp"

namespace prometheus {
class Registry;
class Histogram;
class Gauge;
class Counter;
template <typename T>
class Family;
}  // namespace prometheus

namespace headroom {

// Seconds spent in each phase of one request (DESIGN.md, "The request path").
struct phase_times {
  double queue = 0;
  double wait = 0;
  double dial = 0;
  double query = 0;
  double release = 0;
  double total = 0;
};

// Bucket bounds in seconds: log-spaced from 0.1 ms to 10 s, ten per decade,
// and forty per decade between 10 ms and 100 ms, where SLOs and dial times
// live, so that percentiles there can be read to within about 6 %.
std::vector<double> phase_buckets();

// Process figures from /proc/self (Linux).
struct process_figures {
  double cpu_seconds = 0;
  double resident_bytes = 0;
  double open_fds = 0;
  double threads = 0;
};
process_figures read_process_figures();

class service_metrics {
 public:
  // `pool` returns a snapshot of the pool's statistics at scrape time; `profile` is the pool's
  // configuration, whose Go version and waiter order headroom_pool_info reports.
  service_metrics(std::function<pool_stats()> pool, const pool_config& profile);
  ~service_metrics();

  void observe_phases(const phase_times& p);
  // `path` must be one of a fixed set (the router's), to bound label cardinality.
  void observe_request(const std::string& path, int code, double seconds);
  // Requests read and not yet fully answered (headroom_http_in_flight), so
  // that a scraper (or a shutdown test) can see work in progress.
  void request_started();
  void request_finished();
  // Client connections open (headroom_http_connections) and those refused over the cap
  // (headroom_http_connections_refused_total).
  void connection_opened();
  void connection_closed();
  void connection_refused();
  // The Prometheus text exposition format, version 0.0.4.
  std::string serialize() const;

 private:
  std::function<pool_stats()> pool_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Histogram>* http_;
  // Family::Add builds a whole histogram before finding an existing series,
  // so series are looked up here first.
  std::mutex http_mu_;
  std::map<std::pair<std::string, int>, prometheus::Histogram*> http_series_;
  prometheus::Histogram* queue_;
  prometheus::Histogram* wait_;
  prometheus::Histogram* dial_;
  prometheus::Histogram* query_;
  prometheus::Histogram* release_;
  prometheus::Histogram* total_;
  prometheus::Gauge* in_flight_;
  prometheus::Gauge* connections_;
  prometheus::Counter* refused_;
};

}  // namespace headroom
