// The Beast HTTP layer, in the shape of Beast's advanced_server example: a
// listener, and one session per connection whose asynchronous steps
// (do_read, on_header, on_read, send, on_write) each handle their own error
// first. Time limits live on the stream (expires_after). POST / and /readyz
// run on the session's I/O thread too: the pool's wait and the query are asynchronous there,
// and only a dial (which blocks) goes to a worker thread. At most --workers of them are in the
// handler at once, the others queue first come first served (phase `queue`), as when each ran
// on a worker thread: the bound the model's `workers` describes. Each I/O thread runs its own
// io_context and owns the sessions dealt to it, so one session's steps need no strand, and a
// reply or a new request wakes only that thread. Past --max-connections, a new connection gets a
// refusal instead of a session.
#include "http_server.hpp"

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cpu_profile.hpp"
#include "request_routing.hpp"

namespace headroom {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

std::chrono::steady_clock::duration seconds(double s) {
  return std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(s));
}

double since(steady::time_point t) {
  return std::chrono::duration<double>(steady::now() - t).count();
}

class session;

// At most `n` requests in the handler at once; the others wait, first come first served, and
// each is started on its own I/O thread by the request that leaves before it. Without a wait
// (the usual case) a request starts at once, on the thread that asks.
class worker_slots {
 public:
  explicit worker_slots(int n) : free_(n) {}

  void enter(const net::any_io_executor& io, std::function<void()> start) {
    {
      std::lock_guard lk(mu_);
      if (free_ == 0) {
        waiting_.emplace_back(io, std::move(start));
        return;
      }
      --free_;
    }
    start();
  }

  void leave() {
    std::pair<net::any_io_executor, std::function<void()>> next;
    {
      std::lock_guard lk(mu_);
      if (waiting_.empty()) {
        ++free_;
        return;
      }
      next = std::move(waiting_.front());
      waiting_.pop_front();
    }
    net::post(next.first, std::move(next.second));
  }

 private:
  std::mutex mu_;
  int free_;
  std::deque<std::pair<net::any_io_executor, std::function<void()>>> waiting_;
};

// The whole answer to a connection over the cap, written before reading its request
// (RFC 9112 lets a server answer early): 503, so HTTP clients and load generators count it
// as the service's refusal rather than a network error, and Connection: close.
int io_thread_count(const server_options& o) {
  const int n =
      o.io_threads > 0 ? o.io_threads : static_cast<int>(std::thread::hardware_concurrency());
  return n > 0 ? n : 1;
}

std::string refusal_response(int max_connections) {
  const std::string body = json_error("too many connections: " + std::to_string(max_connections) +
                                      " are open (--max-connections)");
  return "HTTP/1.1 503 Service Unavailable\r\nServer: headroom-service\r\n"
         "Content-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

struct http_server::state {
  state(const server_options& o, people_handler& h, service_metrics& m)
      : opt(o),
        handler(h),
        metrics(m),
        refusal_answer(refusal_response(o.max_connections)),
        slots(o.workers),
        workers(static_cast<std::size_t>(o.workers)) {
    // A hint of 1: each context is run by one thread (posting to it from others stays safe).
    for (int i = io_thread_count(o); i > 0; --i) io.push_back(std::make_unique<net::io_context>(1));
  }

  const server_options opt;
  people_handler& handler;
  service_metrics& metrics;
  // Declared before io and workers: destroying those destroys the handlers
  // still queued, whose sessions unregister themselves from this map.
  std::atomic<bool> draining{false};
  std::atomic<int> in_flight{0};     // requests whose headers came in, not yet fully answered
  std::atomic<int> connections{0};   // sessions alive (each holds its client's socket)
  std::atomic<int> refusing{0};      // refusals still writing or closing
  const std::string refusal_answer;  // the 503 written to connections over the cap

  std::mutex sessions_mu;
  std::unordered_map<session*, std::weak_ptr<session>> sessions;
  // After `sessions` (a profile's client is a session) and before `io`, whose timer ends it.
  cpu_profiler profiler;

  // One per I/O thread. With all threads sharing one context, every reply posted by a worker
  // and every ready socket also woke an idle I/O thread to look for more work: five context
  // switches per request more on two cores (bench/README.md).
  std::vector<std::unique_ptr<net::io_context>> io;
  std::size_t next_io = 0;  // the context the next accepted connection goes to
  worker_slots slots;       // requests in the handler at once (--workers)
  // Dials, which block; as many threads as slots, so a dial never waits for a thread.
  net::thread_pool workers;
  std::optional<tcp::acceptor> acceptor;
  std::optional<net::signal_set> signals;
  // Keeps the I/O threads running while a request waits for a dial and no I/O
  // is pending (at shutdown, once the acceptor is closed, that can be all of them).
  std::vector<net::executor_work_guard<net::io_context::executor_type>> keep_running;
  std::vector<std::thread> io_threads;

  std::mutex signal_mu;
  std::condition_variable signal_cv;
  bool signalled = false;

  void do_accept();
  void refuse(tcp::socket socket);
};

namespace {

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket&& socket, http_server::state& st) : stream_(std::move(socket)), st_(st) {}
  ~session() {
    end_request();  // a request cut off by the client or a timeout
    st_.connections--;
    st_.metrics.connection_closed();
    std::lock_guard lk(st_.sessions_mu);
    st_.sessions.erase(this);
  }

  void run() {
    {
      std::lock_guard lk(st_.sessions_mu);
      st_.sessions[this] = weak_from_this();
    }
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&session::do_read, shared_from_this()));
  }

  // At shutdown: a connection waiting for its next request is closed now;
  // one with a request in flight closes after writing the answer.
  // `done` is called once this has run, so the drain knows every request that
  // got its headers in before is counted in in_flight.
  void close_if_idle(std::function<void()> done) {
    net::post(stream_.get_executor(), [self = shared_from_this(), done = std::move(done)] {
      if (self->reading_) {
        beast::error_code ec;
        self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
        self->stream_.socket().close(ec);
      }
      done();
    });
  }

 private:
  void do_read() {
    if (st_.draining) return do_close();
    parser_.emplace();
    parser_->body_limit(st_.opt.body_limit);
    parser_->header_limit(static_cast<std::uint32_t>(st_.opt.header_limit));
    reading_ = true;
    stream_.expires_after(seconds(st_.opt.header_timeout));
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (ec) return on_read_error(ec);
    // A request has begun: from here on a drain waits for its answer.
    reading_ = false;
    begin_request();
    // Clients such as curl announce larger bodies and wait (up to a second)
    // for permission to send them.
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue") &&
        !parser_->is_done()) {
      static const std::string go_on = "HTTP/1.1 100 Continue\r\n\r\n";
      return net::async_write(stream_, net::buffer(go_on),
                              beast::bind_front_handler(&session::on_continue, shared_from_this()));
    }
    do_read_body();
  }

  void on_continue(beast::error_code ec, std::size_t) {
    if (ec) return do_close();
    do_read_body();
  }

  void do_read_body() {
    stream_.expires_after(seconds(st_.opt.body_timeout));
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&session::on_read, shared_from_this()));
  }

  void on_read_error(beast::error_code ec) {
    reading_ = false;
    // The client went away, was too slow (the stream already closed the
    // socket), or shutdown closed us: nothing to answer.
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::bad_descriptor ||
        ec == net::error::connection_reset) {
      end_request();
      return do_close();
    }
    parsed_ = steady::now();
    begin_request();
    st_.metrics.request_started();
    if (auto r = route_unreadable(ec, *parser_, st_.opt.body_limit, st_.opt.header_limit))
      return send(std::move(r->answer), 11, false, r->label);
    end_request();
    st_.metrics.request_finished();
    do_close();
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return on_read_error(ec);
    // on_header already marked the request begun (reading_ false, in_flight counted).
    parsed_ = steady::now();
    st_.metrics.request_started();
    // The handler's time is not the client's: no timeout until the write.
    stream_.expires_never();
    route(parser_->release());
  }

  void route(http::request<http::string_body>&& req) {
    const unsigned version = req.version();
    const bool keep = req.keep_alive();
    auto to = route_request(req, st_.opt.pprof, st_.opt.pool_admin);
    if (to.kind == route_kind::answer) return send(std::move(to.answer), version, keep, to.label);
    if (to.kind == route_kind::cpu_profile && st_.draining)  // it would hold the drain
      return send(error_reply(503, "the service is shutting down"), version, keep, to.label);
    if (to.kind == route_kind::cpu_profile) {
      // Answered from a timer on this thread when the profile ends; the thread serves on meanwhile.
      return st_.profiler.take(stream_.get_executor(), to.seconds,
                               [self = shared_from_this(), version, keep, l = to.label](reply r) {
                                 self->send(std::move(r), version, keep, l);
                               });
    }
    if (to.kind == route_kind::pool_limits)
      return send(st_.handler.pool_limits(req.method() == http::verb::put, req.body()), version,
                  keep, to.label);
    if (to.kind == route_kind::metrics) {
      reply r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = st_.metrics.serialize();
      return send(std::move(r), version, keep, to.label);
    }
    // POST / and /readyz: the handler answers on this thread, now or once the database has,
    // when a worker slot is free.
    const std::string_view l(to.label);
    auto answer = [self = shared_from_this(), version, keep, l](reply r, const phase_times& ph) {
      self->st_.slots.leave();
      if (l == "/") {
        // Only answered queries describe the request path the model studies.
        if (r.status == 200) self->st_.metrics.observe_phases(ph);
        r.headers.emplace_back("Server-Timing", server_timing(ph));
      }
      self->send(std::move(r), version, keep, l.data());
    };
    st_.slots.enter(
        stream_.get_executor(),
        [self = shared_from_this(), body = std::move(req.body()), l, answer = std::move(answer)] {
          auto& st = self->st_;
          try {
            if (l == "/")
              st.handler.find_people(body, since(self->parsed_), self->stream_.get_executor(),
                                     st.workers.get_executor(), answer);
            else
              st.handler.ready(self->stream_.get_executor(), st.workers.get_executor(), answer);
          } catch (const std::exception& e) {
            // An exception escaping an I/O thread's handler would end the process.
            answer(error_reply(500, std::string("internal error: ") + e.what()), phase_times{});
          }
        });
  }

  void send(reply r, unsigned version, bool keep_alive, const char* label) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), version);
    res->set(http::field::server, "headroom-service");
    res->set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) res->set(k, v);
    res->body() = std::move(r.body);
    const bool keep = keep_alive && !st_.draining;
    res->keep_alive(keep);
    res->prepare_payload();
    st_.metrics.observe_request(label, r.status, since(parsed_));
    response_ = res;
    stream_.expires_after(seconds(st_.opt.body_timeout));
    http::async_write(stream_, *res,
                      beast::bind_front_handler(&session::on_write, shared_from_this(), keep));
  }

  void on_write(bool keep, beast::error_code ec, std::size_t) {
    end_request();
    st_.metrics.request_finished();
    response_.reset();
    if (ec) return do_close();
    if (!keep) return do_close();
    do_read();
  }

  // Shut down our side, then read and discard what the client still sends
  // (briefly): closing with unread data would make the kernel send a reset,
  // which can destroy our last response (a 413, say) before the client reads it.
  void do_close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return;
    stream_.expires_after(std::chrono::seconds(1));
    do_discard();
  }
  void do_discard() {
    stream_.async_read_some(net::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (!ec) self->do_discard();
                            });
  }

  // in_flight counts requests from their headers to their answer, once each.
  void begin_request() {
    if (!counted_) st_.in_flight++;
    counted_ = true;
  }
  void end_request() {
    if (counted_) st_.in_flight--;
    counted_ = false;
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<void> response_;  // kept alive until written
  std::array<char, 4096> discard_;
  http_server::state& st_;
  bool reading_ = false;  // waiting for a request's headers (idle keep-alive)
  bool counted_ = false;  // this session's request is in st_.in_flight
  steady::time_point parsed_;
};

// A connection over --max-connections: the 503 is written at once, then what the client sends
// is read and dropped until it closes (closing with unread data would reset the connection and
// could destroy the answer before the client reads it). One second at most in all.
class refusal : public std::enable_shared_from_this<refusal> {
 public:
  refusal(tcp::socket&& socket, http_server::state& st) : stream_(std::move(socket)), st_(st) {
    st_.refusing++;
  }
  ~refusal() { st_.refusing--; }

  void run() {
    stream_.expires_after(std::chrono::seconds(1));
    net::async_write(stream_, net::buffer(st_.refusal_answer),
                     beast::bind_front_handler(&refusal::on_write, shared_from_this()));
  }

 private:
  void on_write(beast::error_code ec, std::size_t) {
    if (ec) return;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    do_discard();
  }
  void do_discard() {
    stream_.async_read_some(net::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (!ec) self->do_discard();
                            });
  }

  beast::tcp_stream stream_;
  http_server::state& st_;
  std::array<char, 4096> discard_;
};

}  // namespace

void http_server::state::refuse(tcp::socket socket) {
  metrics.connection_refused();
  // A flood of connections must not hold descriptors through refusals either: past as many
  // refusals in progress as the cap, close at once without an answer.
  if (refusing >= opt.max_connections) {
    beast::error_code ec;
    socket.close(ec);
    return;
  }
  std::make_shared<refusal>(std::move(socket), *this)->run();
}

void http_server::state::do_accept() {
  // Connections are dealt to the I/O threads in turn; a session stays on its thread.
  net::io_context& home = *io[next_io];
  next_io = (next_io + 1) % io.size();
  acceptor->async_accept(home, [this](beast::error_code ec, tcp::socket socket) {
    if (!acceptor->is_open()) return;  // stopped at shutdown
    if (ec) {
      // Out of descriptors (say): retrying at once would spin a core while
      // the condition lasts, so pause briefly.
      auto timer = std::make_shared<net::steady_timer>(acceptor->get_executor(),
                                                       std::chrono::milliseconds(50));
      timer->async_wait([this, timer](beast::error_code) {
        if (acceptor->is_open()) do_accept();
      });
      return;
    }
    // Small responses must not wait for Nagle's algorithm.
    socket.set_option(tcp::no_delay(true), ec);
    // Only this handler adds connections, one at a time, so the count cannot overshoot the cap.
    if (connections >= opt.max_connections) {
      refuse(std::move(socket));
    } else {
      connections++;
      metrics.connection_opened();
      std::make_shared<session>(std::move(socket), *this)->run();
    }
    do_accept();
  });
}

http_server::http_server(const server_options& opt, people_handler& handler,
                         service_metrics& metrics)
    : st_(std::make_unique<state>(opt, handler, metrics)) {}

http_server::~http_server() { stop(true); }

unsigned short http_server::start() {
  auto& st = *st_;
  const auto address = net::ip::make_address(st.opt.host);
  st.acceptor.emplace(*st.io.front());
  const tcp::endpoint ep(address, st.opt.port);
  st.acceptor->open(ep.protocol());
  st.acceptor->set_option(net::socket_base::reuse_address(true));
  st.acceptor->bind(ep);
  st.acceptor->listen(net::socket_base::max_listen_connections);
  const unsigned short port = st.acceptor->local_endpoint().port();

  st.signals.emplace(*st.io.front(), SIGINT, SIGTERM);
  st.signals->async_wait([&st](beast::error_code ec, int) {
    if (ec) return;
    std::lock_guard lk(st.signal_mu);
    st.signalled = true;
    st.signal_cv.notify_all();
  });
  st.do_accept();
  for (auto& ctx : st.io) {
    st.keep_running.push_back(net::make_work_guard(*ctx));
    st.io_threads.emplace_back([&ctx = *ctx] { ctx.run(); });
  }
  return port;
}

bool http_server::wait_for_signal_and_drain() {
  auto& st = *st_;
  {
    std::unique_lock lk(st.signal_mu);
    st.signal_cv.wait(lk, [&] { return st.signalled; });
  }
  st.draining = true;
  st.profiler.finish_now();  // a running profile would hold the drain for up to a minute
  net::post(st.acceptor->get_executor(), [&st] {
    beast::error_code ec;
    st.acceptor->close(ec);
  });
  // Collected first and used outside the lock: dropping the last reference
  // to a session runs its destructor, which takes the same lock.
  std::vector<std::shared_ptr<session>> live;
  {
    std::lock_guard lk(st.sessions_mu);
    for (auto& [_, weak] : st.sessions)
      if (auto s = weak.lock()) live.push_back(std::move(s));
  }
  auto unchecked = std::make_shared<std::atomic<int>>(static_cast<int>(live.size()));
  for (auto& s : live) s->close_if_idle([unchecked] { --*unchecked; });
  live.clear();
  const auto deadline = steady::now() + seconds(st.opt.drain_timeout);
  while ((*unchecked > 0 || st.in_flight > 0) && steady::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return st.in_flight == 0;
}

void http_server::stop(bool workers_done) {
  auto& st = *st_;
  st.keep_running.clear();
  for (auto& ctx : st.io) ctx->stop();
  for (auto& t : st.io_threads)
    if (t.joinable()) t.join();
  st.io_threads.clear();
  if (workers_done) st.workers.join();
}

}  // namespace headroom
