// The open-loop generator's orchestration: checks the options, serializes the requests once,
// starts one worker per thread (load_worker.hpp), reports progress, handles Ctrl-C, and adds the
// workers' results into one.
#include "open_loop_generator.hpp"

#include <sys/resource.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <csignal>
#include <cstdlib>
#include <sstream>
#include <string_view>
#include <thread>

#include "load_worker.hpp"

namespace headroom::calibrate {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

double cpu_seconds(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
}

bool is_token(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) ||
          std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos))
      return false;
  return true;
}

}  // namespace

open_loop_generator::open_loop_generator(load_options options) : options_(std::move(options)) {
  if (options_.targets.empty()) throw load_input_error("at least one --target is needed");
  if (options_.threads < 1) throw load_input_error("--threads must be at least 1");
  if (options_.max_connections < options_.threads)
    throw load_input_error("--max-connections must be at least --threads");
  if (!(options_.timeout > 0)) throw load_input_error("--timeout must be positive");
  if (!is_token(options_.method)) throw load_input_error("invalid method: " + options_.method);
  for (const auto& [name, value] : options_.headers) {
    if (!is_token(name)) throw load_input_error("invalid header name: '" + name + "'");
    if (value.find_first_of("\r\n") != std::string::npos)
      throw load_input_error("invalid header value for " + name);
  }
  for (const auto& url : options_.targets) targets_.push_back(parse_target_url(url));
}

open_loop_generator::~open_loop_generator() = default;

void open_loop_generator::check_reachable() const {
  for (const auto& t : targets_) {
    asio::io_context io;
    tcp::resolver resolver(io);
    error_code ec;
    auto endpoints = resolver.resolve(t.host, t.port, ec);
    if (ec) throw load_input_error("cannot resolve " + t.url + ": " + ec.message());
    beast::tcp_stream stream(io);
    stream.expires_after(to_duration(std::min(options_.timeout, 5.0)));
    error_code connect_ec;
    stream.async_connect(endpoints, [&](error_code e, const tcp::endpoint&) { connect_ec = e; });
    io.run();
    if (connect_ec) throw load_input_error("cannot reach " + t.url + ": " + error_kind(connect_ec));
  }
}

void open_loop_generator::request_stop() {
  if (!stop_requested_.exchange(true)) stopped_at_ = load_clock::now().time_since_epoch().count();
  // May come from another thread (a signal, a test) while run() builds workers_.
  std::lock_guard lock(workers_mu_);
  for (auto& w : workers_) w->stop();
}

load_result open_loop_generator::run(const std::function<void(const load_progress&)>& on_progress) {
  run_plan plan;
  for (const auto& t : targets_) {
    asio::io_context io;
    tcp::resolver resolver(io);
    error_code ec;
    plan.endpoints.push_back(resolver.resolve(t.host, t.port, ec));
    if (ec) throw load_input_error("cannot resolve " + t.url + ": " + ec.message());
    http::request<http::string_body> req;
    if (auto verb = http::string_to_verb(options_.method); verb != http::verb::unknown)
      req.method(verb);
    else
      req.method_string(options_.method);
    req.target(t.path);
    req.version(11);
    req.set(http::field::host, t.port == "80" ? t.host : t.host + ":" + t.port);
    req.set(http::field::user_agent, "headroom-load");
    for (const auto& [name, value] : options_.headers) req.set(name, value);
    req.body() = options_.body;
    if (!options_.body.empty() || options_.method == "POST" || options_.method == "PUT")
      req.prepare_payload();
    req.keep_alive(true);
    std::ostringstream bytes;
    bytes << req;
    plan.request_bytes.push_back(bytes.str());
  }
  const auto& schedule = options_.schedule;
  plan.warmup = schedule.warmup();
  plan.total_duration = schedule.total_duration();
  plan.timeout = to_duration(options_.timeout);
  plan.min_tick = to_duration(options_.min_tick);
  plan.max_seconds = static_cast<std::size_t>(schedule.measured_duration() + options_.timeout) + 2;
  plan.arrivals = options_.arrivals;
  plan.seed = options_.seed;

  rusage before{};
  getrusage(RUSAGE_SELF, &before);

  // A little time for the threads to start, so the first sends are not all late.
  plan.start = load_clock::now() + std::chrono::milliseconds(20);
  plan.measured_start = plan.start + to_duration(plan.warmup);
  {
    std::lock_guard lock(workers_mu_);
    workers_.clear();
    for (int i = 0; i < options_.threads; ++i) {
      int share = options_.max_connections / options_.threads +
                  (i < options_.max_connections % options_.threads ? 1 : 0);
      workers_.push_back(std::make_unique<load_worker>(plan, schedule, i, options_.threads, share));
    }
  }
  if (stop_requested_) request_stop();

  asio::io_context control;
  auto guard = asio::make_work_guard(control);
  // Set when the last worker is done. A tick (or signal) handler that had already fired when the
  // timer was cancelled still runs (cancel() cannot recall it) and must not arm it again: that
  // kept control running for ever (a hang seen in CI).
  bool finished = false;
  asio::signal_set signals(control);
  bool signalled = false;
  std::function<void(error_code, int)> on_signal = [&](error_code ec, int) {
    if (ec || finished) return;
    if (signalled) std::_Exit(130);  // a second Ctrl-C: the user wants out now
    signalled = true;
    request_stop();
    signals.async_wait(on_signal);
  };
  if (options_.handle_signals) {
    signals.add(SIGINT);
    signals.add(SIGTERM);
    signals.async_wait(on_signal);
  }
  asio::steady_timer progress_timer(control);
  std::function<void(error_code)> on_tick = [&](error_code ec) {
    if (ec || finished) return;
    auto now = load_clock::now();
    double elapsed = to_seconds(now - plan.measured_start);
    load_progress p{elapsed, 0, 0, 0, 0, 0};
    latency_histogram last_second(2);
    std::uint64_t completed_in_second = 0;
    std::size_t second = elapsed >= 1 ? static_cast<std::size_t>(elapsed) - 1 : SIZE_MAX;
    for (auto& w : workers_)
      w->snapshot(second, last_second, completed_in_second, p.sent, p.completed, p.failed);
    p.rate = static_cast<double>(completed_in_second);
    p.p99 = last_second.percentile(99);
    on_progress(p);
    progress_timer.expires_after(to_duration(options_.progress_interval));
    progress_timer.async_wait(on_tick);
  };
  if (on_progress) {
    progress_timer.expires_after(to_duration(options_.progress_interval));
    progress_timer.async_wait(on_tick);
  }

  std::atomic<int> running{options_.threads};
  std::vector<std::thread> threads;
  for (auto& w : workers_) {
    threads.emplace_back([&, wp = w.get()] {
      wp->run();
      if (--running == 0)
        asio::post(control, [&] {
          finished = true;
          error_code ignored;
          signals.cancel(ignored);
          progress_timer.cancel();
          guard.reset();
        });
    });
  }
  control.run();
  for (auto& t : threads) t.join();

  rusage after{};
  getrusage(RUSAGE_SELF, &after);

  load_result r;
  r.targets = options_.targets;
  r.method = options_.method;
  r.schedule = schedule.describe();
  r.arrivals = to_string(options_.arrivals);
  r.offered_rate = schedule.offered_rate();
  r.duration = schedule.measured_duration();
  r.warmup = schedule.warmup();
  r.threads = options_.threads;
  r.max_connections = options_.max_connections;
  r.timeout = options_.timeout;
  // merge_into adds the run-level fields, so start each worker's copy from zero.
  load_clock::time_point last{};
  bool first = true;
  for (auto& w : workers_) {
    load_result& wr = w->result();
    wr.targets = r.targets;
    wr.schedule = r.schedule;
    if (first) {
      auto keep = r;
      r = std::move(wr);
      r.targets = keep.targets;
      r.method = keep.method;
      r.schedule = keep.schedule;
      r.arrivals = keep.arrivals;
      r.offered_rate = keep.offered_rate;
      r.duration = keep.duration;
      r.warmup = keep.warmup;
      r.threads = keep.threads;
      r.max_connections = keep.max_connections;
      r.timeout = keep.timeout;
      r.runs = 1;
      first = false;
    } else {
      wr.offered_rate = 0;
      wr.threads = 0;
      wr.max_connections = 0;
      wr.runs = 0;
      merge_into(r, wr);
    }
    last = std::max(last, w->last_completion());
  }
  r.interrupted = stop_requested_.load();
  if (r.interrupted) {
    auto end = load_clock::time_point(load_clock::duration(stopped_at_.load()));
    r.elapsed = std::max(0.0, to_seconds(end - plan.measured_start));
  } else {
    double last_s = last == load_clock::time_point{} ? 0.0 : to_seconds(last - plan.measured_start);
    r.elapsed = std::max(schedule.measured_duration(), last_s);
  }
  r.cpu_user = cpu_seconds(after.ru_utime) - cpu_seconds(before.ru_utime);
  r.cpu_system = cpu_seconds(after.ru_stime) - cpu_seconds(before.ru_stime);
  return r;
}

}  // namespace headroom::calibrate
