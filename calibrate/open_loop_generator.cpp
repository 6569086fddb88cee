// The open-loop generator: per thread, one io_context runs a schedule timer, a pool of keep-alive
// connections and a FIFO of requests that found every connection busy. Each asynchronous step is
// a named member that handles its own error first, as in Beast's examples.
#include "open_loop_generator.hpp"

#include <sys/resource.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "server_timing.hpp"

namespace headroom::calibrate {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

constexpr std::size_t max_phase_names = 32;  // bounds memory if a target invents names
constexpr std::uint64_t body_limit = 64 * 1024 * 1024;

clock_type::duration to_duration(double seconds) {
  return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
}
double to_seconds(clock_type::duration d) { return std::chrono::duration<double>(d).count(); }

double cpu_seconds(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
}

// Short, stable names for what went wrong, so reports from different runs add up.
std::string error_kind(const error_code& ec) {
  if (ec == beast::error::timeout) return "timeout";
  if (ec == asio::error::connection_refused) return "connection refused";
  if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe)
    return "connection reset";
  if (ec == http::error::end_of_stream || ec == asio::error::eof) return "connection closed";
  if (ec == http::error::body_limit) return "response too large";
  if (ec.category() == make_error_code(http::error::end_of_stream).category())
    return "bad response";
  return ec.message();
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

http_target parse_target_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind("https://", 0) == 0)
    throw load_input_error("https is not supported (plain http only): " + url);
  if (url.rfind(scheme, 0) != 0)
    throw load_input_error("invalid URL (expected http://host[:port]/path): " + url);
  std::string rest = url.substr(scheme.size());
  auto slash = rest.find_first_of("/?");
  std::string authority = rest.substr(0, slash);
  http_target t;
  t.url = url;
  t.path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (t.path.front() == '?') t.path = "/" + t.path;
  if (authority.find('@') != std::string::npos)
    throw load_input_error("invalid URL (user info is not supported): " + url);
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
    auto close = authority.find(']');
    if (close == std::string::npos) throw load_input_error("invalid URL: " + url);
    t.host = authority.substr(1, close - 1);
    std::string after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') throw load_input_error("invalid URL: " + url);
    t.port = after.empty() ? "80" : after.substr(1);
  } else {
    auto colon = authority.rfind(':');
    t.host = authority.substr(0, colon);
    t.port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
  }
  if (t.host.empty()) throw load_input_error("invalid URL (no host): " + url);
  if (t.port.empty() || t.port.size() > 5 ||
      t.port.find_first_not_of("0123456789") != std::string::npos || std::stoi(t.port) == 0 ||
      std::stoi(t.port) > 65535)
    throw load_input_error("invalid URL (bad port): " + url);
  for (char c : t.path)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
      throw load_input_error("invalid URL (space or control character in the path): " + url);
  return t;
}

// Read-only during a run; shared by the workers.
struct run_plan {
  std::vector<std::string> request_bytes;  // per target, serialized once
  std::vector<tcp::resolver::results_type> endpoints;
  clock_type::time_point start;           // t = 0 of the schedule
  clock_type::time_point measured_start;  // after the warmup
  double warmup = 0;
  double total_duration = 0;
  clock_type::duration timeout{};
  clock_type::duration min_tick{};  // shortest time between two wake-ups of the schedule timer
  std::size_t max_seconds = 0;      // per-second rows beyond this are not kept
};

namespace {

struct pending_request {
  clock_type::time_point intended;
  int target;
  bool measured;         // false during warmup
  bool retried = false;  // already resent once after a stale keep-alive connection
};

struct connection {
  connection(asio::io_context& io, int t) : socket(io), target(t) {}
  // A plain socket with one deadline checked by a periodic sweep: beast::tcp_stream would arm
  // and cancel a timer on every read and write, which costs more than the request at high rates.
  tcp::socket socket;
  clock_type::time_point deadline = clock_type::time_point::max();
  bool timed_out = false;
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::string_body>> parser;
  int target;
  pending_request request{};
  clock_type::time_point sent_at{};
  std::uint64_t responses = 0;  // on this connection so far: 0 means freshly connected
  std::list<std::unique_ptr<connection>>::iterator self;
};

}  // namespace

class open_loop_generator::worker {
 public:
  worker(const run_plan& plan, const load_schedule& schedule, const load_options& options,
         int index, int count, int max_connections)
      : plan_(plan),
        arrivals_(schedule, options.arrivals, index, count, options.seed),
        timer_(io_),
        drain_timer_(io_),
        sweep_timer_(io_),
        sweep_interval_(std::min(
            plan.timeout / 10,
            std::chrono::duration_cast<clock_type::duration>(std::chrono::milliseconds(50)))),
        max_connections_(max_connections),
        target_count_(static_cast<int>(plan.request_bytes.size())),
        next_target_(index),
        target_step_(count),
        backlog_(plan.request_bytes.size()),
        idle_(plan.request_bytes.size()) {}

  void run() {
    next_ = arrivals_.next();
    arm_schedule();
    arm_sweep();
    io_.run();
  }

  // From any thread.
  void stop() {
    asio::post(io_, [this] {
      if (!stopping_) end_run();
    });
  }

  // Called by the controller, under no lock of ours; copies what progress needs.
  void snapshot(std::size_t second, latency_histogram& into, std::uint64_t& completed_in_second,
                std::uint64_t& sent, std::uint64_t& completed, std::uint64_t& failed) {
    std::lock_guard lock(mutex_);
    if (second < result_.per_second.size()) {
      into.merge(result_.per_second[second].latency);
      completed_in_second += result_.per_second[second].completed;
    }
    sent += result_.sent;
    completed += result_.completed;
    failed += result_.failed();
  }

  load_result& result() { return result_; }
  clock_type::time_point last_completion() const { return last_completion_; }

 private:
  // --- the schedule ---------------------------------------------------------------------------
  void arm_schedule() {
    if (!next_) {
      on_schedule_done();
      return;
    }
    // One wake-up per request costs more than the request above ~10,000 rps, so wake-ups are at
    // least min_tick apart; requests due in between go out together, at most min_tick late (it
    // shows in send delay and in latency from the intended time, as it should).
    auto due = plan_.start + to_duration(*next_);
    timer_.expires_at(std::max(due, last_wake_ + plan_.min_tick));
    timer_.async_wait([this](error_code ec) { on_schedule_timer(ec); });
  }

  void on_schedule_timer(error_code ec) {
    if (ec || stopping_) return;
    // Everything due is dispatched now, even if the timer fired late: the rate is never lowered.
    auto now = clock_type::now();
    last_wake_ = now;
    while (next_ && plan_.start + to_duration(*next_) <= now) {
      pending_request p{plan_.start + to_duration(*next_),
                        static_cast<int>(next_target_ % static_cast<std::uint64_t>(target_count_)),
                        *next_ >= plan_.warmup};
      next_target_ += target_step_;
      next_ = arrivals_.next();
      dispatch(p);
    }
    arm_schedule();
  }

  void on_schedule_done() {
    schedule_done_ = true;
    // Requests still waiting or in flight get one timeout past the schedule's end, no more.
    drain_timer_.expires_at(plan_.start + to_duration(plan_.total_duration) + plan_.timeout);
    drain_timer_.async_wait([this](error_code ec) {
      if (!ec && !stopping_) end_run();
    });
    maybe_finish();
  }

  // Closes connections past their deadline; their pending operation then fails as a timeout.
  void arm_sweep() {
    sweep_timer_.expires_after(sweep_interval_);
    sweep_timer_.async_wait([this](error_code ec) {
      if (ec || stopping_) return;
      auto now = clock_type::now();
      for (auto& c : connections_) {
        if (c->deadline <= now && !c->timed_out) {
          c->timed_out = true;
          error_code ignored;
          c->socket.close(ignored);
        }
      }
      arm_sweep();
    });
  }

  // --- sending --------------------------------------------------------------------------------
  void dispatch(const pending_request& p) {
    if (p.measured) {
      std::lock_guard lock(mutex_);
      ++result_.scheduled;
    }
    while (!idle_[p.target].empty()) {
      connection* c = idle_[p.target].back();  // most recently used: its socket is warm
      idle_[p.target].pop_back();
      if (closed_by_peer(*c)) {  // the server closed it while idle: not an error, just gone
        close(c);
        continue;
      }
      send(c, p);
      return;
    }
    if (open_ >= max_connections_) close_one_idle_connection();
    if (open_ < max_connections_) {
      open_connection(p);
      return;
    }
    // Every connection is busy: the request waits, and its latency still counts from `intended`.
    if (p.measured) {
      std::lock_guard lock(mutex_);
      ++result_.late;
    }
    backlog_[p.target].push_back(p);
    ++backlog_size_;
  }

  void open_connection(const pending_request& p) {
    connections_.push_front(std::make_unique<connection>(io_, p.target));
    connection* c = connections_.front().get();
    c->self = connections_.begin();
    c->request = p;
    ++open_;
    ++in_flight_;
    c->deadline = clock_type::now() + plan_.timeout;
    asio::async_connect(c->socket, plan_.endpoints[p.target],
                        [this, c](error_code ec, const tcp::endpoint&) { on_connect(c, ec); });
  }

  void on_connect(connection* c, error_code ec) {
    if (ec) return fail(c, ec);
    c->socket.set_option(tcp::no_delay(true), ec);
    {
      std::lock_guard lock(mutex_);
      ++result_.connections_opened;
    }
    do_write(c);
  }

  void send(connection* c, const pending_request& p) {
    c->request = p;
    ++in_flight_;
    do_write(c);
  }

  void do_write(connection* c) {
    c->sent_at = clock_type::now();
    if (c->request.measured && !c->request.retried) {  // a resend is not a second request
      std::lock_guard lock(mutex_);
      ++result_.sent;
      result_.send_delay.record(to_seconds(c->sent_at - c->request.intended));
      if (auto* s = second_at(c->sent_at)) ++s->sent;
    }
    c->deadline = c->sent_at + plan_.timeout;
    asio::async_write(c->socket, asio::buffer(plan_.request_bytes[c->target]),
                      [this, c](error_code ec, std::size_t) { on_write(c, ec); });
  }

  void on_write(connection* c, error_code ec) {
    if (ec) return fail(c, ec);
    c->parser.emplace();
    c->parser->body_limit(body_limit);
    http::async_read(c->socket, c->buffer, *c->parser,
                     [this, c](error_code ec2, std::size_t) { on_read(c, ec2); });
  }

  void on_read(connection* c, error_code ec) {
    if (ec) return fail(c, ec);
    auto now = clock_type::now();
    --in_flight_;
    ++c->responses;
    record_response(*c, now);
    bool keep_alive = c->parser->keep_alive();
    c->parser.reset();
    if (!keep_alive || stopping_ || c->timed_out) {  // a timed-out socket is already closed
      close(c);
      after_close();
      return;
    }
    release(c);
  }

  void fail(connection* c, error_code ec) {
    --in_flight_;
    // A reused keep-alive connection the server closed just as we sent on it: nothing was
    // answered, so resend once on a fresh connection (as HTTP clients do); the latency still
    // counts from the first intended send time.
    bool stale = c->responses > 0 && !c->request.retried && !stopping_ && !c->timed_out &&
                 (ec == http::error::end_of_stream || ec == asio::error::eof ||
                  ec == asio::error::connection_reset || ec == asio::error::broken_pipe) &&
                 (!c->parser || !c->parser->got_some());
    if (stale) {
      pending_request p = c->request;
      p.retried = true;
      if (p.measured) {
        std::lock_guard lock(mutex_);
        ++result_.retries;
      }
      close(c);
      open_connection(p);
      return;
    }
    if (c->request.measured) {
      std::lock_guard lock(mutex_);
      if (stopping_) {
        ++result_.unfinished;  // cut off by the end of the run, not the target's fault
      } else {
        ++result_.transport_errors;
        ++result_.error_counts[c->timed_out ? std::string("timeout") : error_kind(ec)];
        if (auto* s = second_at(clock_type::now())) ++s->errors;
      }
    }
    close(c);
    after_close();
  }

  // --- the pool -------------------------------------------------------------------------------
  void release(connection* c) {
    if (auto& queue = backlog_[c->target]; !queue.empty()) {
      pending_request p = queue.front();
      queue.pop_front();
      --backlog_size_;
      send(c, p);
      return;
    }
    if (backlog_size_ > 0) {  // only other targets wait: trade this connection for one of theirs
      close(c);
      after_close();
      return;
    }
    c->deadline = clock_type::time_point::max();
    idle_[c->target].push_back(c);
    maybe_finish();
  }

  // True when the peer has closed an idle connection (a non-blocking peek reads end-of-file).
  static bool closed_by_peer(connection& c) {
    char byte;
    ssize_t n = ::recv(c.socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }

  void close(connection* c) {
    error_code ignored;
    c->socket.shutdown(tcp::socket::shutdown_both, ignored);
    c->socket.close(ignored);
    --open_;
    connections_.erase(c->self);
  }

  void close_one_idle_connection() {
    for (auto& list : idle_) {
      if (!list.empty()) {
        connection* c = list.front();  // least recently used
        list.erase(list.begin());
        close(c);
        return;
      }
    }
  }

  // A connection went away: waiting requests may now get a new one.
  void after_close() {
    while (!stopping_ && backlog_size_ > 0 && open_ < max_connections_) {
      int oldest = -1;
      for (int t = 0; t < target_count_; ++t)
        if (!backlog_[t].empty() &&
            (oldest < 0 || backlog_[t].front().intended < backlog_[oldest].front().intended))
          oldest = t;
      pending_request p = backlog_[oldest].front();
      backlog_[oldest].pop_front();
      --backlog_size_;
      open_connection(p);
    }
    maybe_finish();
  }

  void maybe_finish() {
    if (!schedule_done_ || in_flight_ > 0 || backlog_size_ > 0 || stopping_) return;
    stopping_ = true;
    drain_timer_.cancel();
    sweep_timer_.cancel();
    close_idle_connections();
  }

  void close_idle_connections() {
    for (auto& list : idle_) {
      for (connection* c : list) close(c);
      list.clear();
    }
  }

  // Stop now: waiting requests are unsent, in-flight ones unfinished (their handlers count them).
  void end_run() {
    stopping_ = true;
    timer_.cancel();
    drain_timer_.cancel();
    sweep_timer_.cancel();
    {
      std::lock_guard lock(mutex_);
      for (auto& queue : backlog_)
        for (const auto& p : queue)
          if (p.measured) ++result_.unsent;
    }
    for (auto& queue : backlog_) queue.clear();
    backlog_size_ = 0;
    close_idle_connections();
    for (auto& c : connections_) {
      error_code ignored;
      c->socket.cancel(ignored);
      c->socket.close(ignored);
    }
  }

  // --- recording ------------------------------------------------------------------------------
  second_stats* second_at(clock_type::time_point t) {  // caller holds mutex_
    if (t < plan_.measured_start) return nullptr;
    auto i = static_cast<std::size_t>(to_seconds(t - plan_.measured_start));
    if (i >= plan_.max_seconds) return nullptr;
    if (i >= result_.per_second.size()) result_.per_second.resize(i + 1);
    return &result_.per_second[i];
  }

  void record_response(const connection& c, clock_type::time_point now) {
    if (!c.request.measured) return;
    const auto& res = c.parser->get();
    int status = res.result_int();
    std::vector<server_timing_entry> phases;
    bool had_timing = false;
    bool malformed = false;
    for (auto range = res.equal_range("Server-Timing"); range.first != range.second;
         ++range.first) {
      had_timing = true;
      auto parsed = parse_server_timing(range.first->value());
      malformed = malformed || parsed.malformed;
      for (auto& e : parsed.entries) phases.push_back(std::move(e));
    }
    double latency = to_seconds(now - c.request.intended);
    std::lock_guard lock(mutex_);
    ++result_.completed;
    result_.latency.record(latency);
    result_.service_time.record(to_seconds(now - c.sent_at));
    ++result_.status_counts[status];
    if (had_timing) ++result_.server_timing_responses;
    if (malformed) ++result_.server_timing_malformed;
    for (const auto& e : phases) {
      auto it = result_.phases.find(e.name);
      if (it == result_.phases.end()) {
        if (result_.phases.size() >= max_phase_names) continue;
        it = result_.phases.emplace(e.name, latency_histogram{}).first;
      }
      it->second.record(e.seconds);
    }
    if (auto* s = second_at(now)) {
      ++s->completed;
      s->latency.record(latency);
      if (status >= 400) ++s->errors;
    }
    if (now > last_completion_) last_completion_ = now;
  }

  const run_plan& plan_;
  asio::io_context io_{1};
  arrival_sequence arrivals_;
  std::optional<double> next_;
  asio::steady_timer timer_;
  asio::steady_timer drain_timer_;
  asio::steady_timer sweep_timer_;
  clock_type::time_point last_wake_{};
  clock_type::duration sweep_interval_;
  int max_connections_;
  int target_count_;
  std::uint64_t next_target_;
  std::uint64_t target_step_;
  std::vector<std::deque<pending_request>> backlog_;
  std::size_t backlog_size_ = 0;
  std::vector<std::vector<connection*>> idle_;
  std::list<std::unique_ptr<connection>> connections_;
  int open_ = 0;
  std::size_t in_flight_ = 0;
  bool schedule_done_ = false;
  bool stopping_ = false;

  std::mutex mutex_;  // guards result_ against the progress reader
  load_result result_;
  clock_type::time_point last_completion_{};
};

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
  if (!stop_requested_.exchange(true)) stopped_at_ = clock_type::now().time_since_epoch().count();
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

  rusage before{};
  getrusage(RUSAGE_SELF, &before);

  // A little time for the threads to start, so the first sends are not all late.
  plan.start = clock_type::now() + std::chrono::milliseconds(20);
  plan.measured_start = plan.start + to_duration(plan.warmup);
  {
    std::lock_guard lock(workers_mu_);
    workers_.clear();
    for (int i = 0; i < options_.threads; ++i) {
      int share = options_.max_connections / options_.threads +
                  (i < options_.max_connections % options_.threads ? 1 : 0);
      workers_.push_back(
          std::make_unique<worker>(plan, schedule, options_, i, options_.threads, share));
    }
  }
  if (stop_requested_) request_stop();

  asio::io_context control;
  auto guard = asio::make_work_guard(control);
  asio::signal_set signals(control);
  bool signalled = false;
  std::function<void(error_code, int)> on_signal = [&](error_code ec, int) {
    if (ec) return;
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
    if (ec) return;
    auto now = clock_type::now();
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
  clock_type::time_point last{};
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
    auto end = clock_type::time_point(clock_type::duration(stopped_at_.load()));
    r.elapsed = std::max(0.0, to_seconds(end - plan.measured_start));
  } else {
    double last_s = last == clock_type::time_point{} ? 0.0 : to_seconds(last - plan.measured_start);
    r.elapsed = std::max(schedule.measured_duration(), last_s);
  }
  r.cpu_user = cpu_seconds(after.ru_utime) - cpu_seconds(before.ru_utime);
  r.cpu_system = cpu_seconds(after.ru_stime) - cpu_seconds(before.ru_stime);
  return r;
}

}  // namespace headroom::calibrate
