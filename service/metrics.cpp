// Prometheus metrics: prometheus-cpp's registry for the histograms, plus
// families built at scrape time for the pool and the process, serialized
// with prometheus-cpp's TextSerializer (served by the service's own HTTP layer).
#include "metrics.hpp"

#include <dirent.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace headroom {

std::vector<double> phase_buckets() {
  std::vector<double> b;
  // Decades 1e-4..1e1 s; the 1e-2 decade (10-100 ms) is four times denser.
  for (int decade = -4; decade < 1; ++decade) {
    const int steps = decade == -2 ? 40 : 10;
    for (int i = 0; i < steps; ++i) b.push_back(std::pow(10.0, decade + double(i) / steps));
  }
  b.push_back(10.0);
  return b;
}

process_figures read_process_figures() {
  process_figures f;
  // /proc/self/stat: the command name may contain spaces, so fields are
  // counted from the closing parenthesis. utime, stime are fields 14, 15 and
  // num_threads is field 20 (1-based, proc(5)).
  std::ifstream stat("/proc/self/stat");
  std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = all.rfind(')');
  if (close != std::string::npos) {
    std::istringstream rest(all.substr(close + 2));
    std::vector<std::string> fields;
    std::string x;
    while (rest >> x) fields.push_back(x);
    // fields[0] is field 3 (state).
    if (fields.size() > 17) {
      const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
      f.cpu_seconds = (std::stod(fields[11]) + std::stod(fields[12])) / tick;
      f.threads = std::stod(fields[17]);
    }
  }
  std::ifstream statm("/proc/self/statm");
  double size = 0, resident = 0;
  if (statm >> size >> resident)
    f.resident_bytes = resident * static_cast<double>(sysconf(_SC_PAGESIZE));
  if (DIR* d = opendir("/proc/self/fd")) {
    int n = 0;
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') ++n;
    closedir(d);
    f.open_fds = n - 1;  // not counting the descriptor opendir itself holds
  }
  return f;
}

service_metrics::service_metrics(std::function<pool_stats()> pool, const pool_config& profile)
    : pool_(std::move(pool)), registry_(std::make_shared<prometheus::Registry>()) {
  // Which rules the pool follows, so a scrape says what a calibration measured.
  prometheus::BuildGauge()
      .Name("headroom_pool_info")
      .Help("The pool's rules: the Go version profile and the waiter order it follows (always 1)")
      .Register(*registry_)
      .Add({{"go_version", to_string(profile.go)},
            {"waiter_order", to_string(effective_waiter_order(profile))}})
      .Set(1);
  auto& phases =
      prometheus::BuildHistogram()
          .Name("headroom_phase_seconds")
          .Help("Time spent in each phase of POST / (queue, wait, dial, query, release, total)")
          .Register(*registry_);
  const auto b = phase_buckets();
  queue_ = &phases.Add({{"phase", "queue"}}, b);
  wait_ = &phases.Add({{"phase", "wait"}}, b);
  dial_ = &phases.Add({{"phase", "dial"}}, b);
  query_ = &phases.Add({{"phase", "query"}}, b);
  release_ = &phases.Add({{"phase", "release"}}, b);
  total_ = &phases.Add({{"phase", "total"}}, b);
  http_ = &prometheus::BuildHistogram()
               .Name("http_request_seconds")
               .Help("Time from request parsed to response ready, by path and status code")
               .Register(*registry_);
  in_flight_ = &prometheus::BuildGauge()
                    .Name("headroom_http_in_flight")
                    .Help("Requests read and not yet fully answered")
                    .Register(*registry_)
                    .Add({});
  connections_ = &prometheus::BuildGauge()
                      .Name("headroom_http_connections")
                      .Help("Client connections open")
                      .Register(*registry_)
                      .Add({});
  refused_ = &prometheus::BuildCounter()
                  .Name("headroom_http_connections_refused_total")
                  .Help(
                      "Client connections answered 503 and closed because --max-connections "
                      "were open")
                  .Register(*registry_)
                  .Add({});
}

service_metrics::~service_metrics() = default;

void service_metrics::request_started() { in_flight_->Increment(); }
void service_metrics::request_finished() { in_flight_->Decrement(); }
void service_metrics::connection_opened() { connections_->Increment(); }
void service_metrics::connection_closed() { connections_->Decrement(); }
void service_metrics::connection_refused() { refused_->Increment(); }

void service_metrics::observe_phases(const phase_times& p) {
  queue_->Observe(p.queue);
  wait_->Observe(p.wait);
  dial_->Observe(p.dial);
  query_->Observe(p.query);
  release_->Observe(p.release);
  total_->Observe(p.total);
}

void service_metrics::observe_request(const std::string& path, int code, double seconds) {
  static const std::vector<double> buckets = [] {
    std::vector<double> b;
    for (int i = -40; i <= 10; ++i) b.push_back(std::pow(10.0, i / 10.0));
    return b;
  }();
  prometheus::Histogram* h;
  {
    std::lock_guard lk(http_mu_);
    auto& slot = http_series_[{path, code}];
    if (!slot) slot = &http_->Add({{"path", path}, {"code", std::to_string(code)}}, buckets);
    h = slot;
  }
  h->Observe(seconds);
}

namespace {

prometheus::MetricFamily one(const std::string& name, const std::string& help,
                             prometheus::MetricType type, double value) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter)
    m.counter.value = value;
  else
    m.gauge.value = value;
  f.metric.push_back(m);
  return f;
}

}  // namespace

std::string service_metrics::serialize() const {
  auto families = registry_->Collect();
  using prometheus::MetricType;
  const pool_stats s = pool_();
  const auto G = MetricType::Gauge;
  const auto C = MetricType::Counter;
  families.push_back(one("headroom_pool_open",
                         "Connections open or being dialed (DBStats.OpenConnections)", G, s.open));
  families.push_back(
      one("headroom_pool_in_use", "Connections in use (DBStats.InUse)", G, s.in_use));
  families.push_back(one("headroom_pool_idle", "Idle connections (DBStats.Idle)", G, s.idle));
  families.push_back(one("headroom_pool_max_open",
                         "Limit on open connections, 0 = unlimited (DBStats.MaxOpenConnections)", G,
                         s.max_open));
  // DBStats has no idle limit; a calibration needs it to know the setting it measured (read at
  // each scrape: PUT /pool may change it).
  families.push_back(one("headroom_pool_max_idle",
                         "Most idle connections kept (SetMaxIdleConns after Go's clamping)", G,
                         s.max_idle));
  families.push_back(
      one("headroom_pool_waiting", "Callers waiting for a connection right now", G, s.waiting));
  families.push_back(one("headroom_pool_wait_count_total",
                         "Callers that had to wait (DBStats.WaitCount)", C, double(s.wait_count)));
  families.push_back(one("headroom_pool_wait_seconds_total",
                         "Total time waited for a connection (DBStats.WaitDuration)", C,
                         s.wait_seconds));
  families.push_back(
      one("headroom_pool_dials_total", "Connection dials started", C, double(s.dials)));
  families.push_back(one("headroom_pool_dial_failures_total", "Connection dials that failed", C,
                         double(s.dial_failures)));
  families.push_back(one("headroom_pool_wait_timeouts_total",
                         "Waits that ended without a connection", C, double(s.wait_timeouts)));
  families.push_back(
      one("headroom_pool_closed_max_idle_total",
          "Connections closed because the idle list was full (DBStats.MaxIdleClosed)", C,
          double(s.closed_max_idle)));
  families.push_back(one("headroom_pool_closed_max_idle_time_total",
                         "Connections closed for max idle time (DBStats.MaxIdleTimeClosed)", C,
                         double(s.closed_max_idle_time)));
  families.push_back(one("headroom_pool_closed_max_lifetime_total",
                         "Connections closed for max lifetime (DBStats.MaxLifetimeClosed)", C,
                         double(s.closed_max_lifetime)));
  families.push_back(one("headroom_pool_closed_other_total",
                         "Connections closed because broken, over max open, or at shutdown", C,
                         double(s.closed_other)));
  const process_figures p = read_process_figures();
  families.push_back(one("process_cpu_seconds_total", "User and system CPU time of the process", C,
                         p.cpu_seconds));
  families.push_back(
      one("process_resident_memory_bytes", "Resident memory size", G, p.resident_bytes));
  families.push_back(one("process_open_fds", "Open file descriptors", G, p.open_fds));
  families.push_back(one("process_threads", "Threads of the process", G, p.threads));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace headroom
