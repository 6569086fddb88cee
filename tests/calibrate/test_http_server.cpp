// The load generator's test server (test_http_server.hpp).
#include "test_http_server.hpp"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <mutex>
#include <thread>

namespace headroom::test {

namespace {

using tcp = boost::asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

clock_type::duration to_duration(double s) {
  return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(s));
}

unsigned status_of(std::string_view target) {
  auto q = target.find("status=");
  return q == std::string_view::npos
             ? 200u
             : static_cast<unsigned>(std::stoi(std::string(target.substr(q + 7))));
}

}  // namespace

struct test_http_server::state {
  boost::asio::io_context io{1};
  tcp::acceptor acceptor{io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)};
  std::thread thread;
  std::mutex mutex;
  std::string server_timing;
  bool stall_armed = false;
  clock_type::time_point stall_armed_at{};
  clock_type::duration stall_length{};
  clock_type::time_point stall_until{};
  clock_type::time_point stall_started{}, stall_released{};
  std::atomic<std::uint64_t> requests{0};

  // When the response to a request arriving now may leave; `starts_stall` says whether this
  // request started the stall.
  clock_type::time_point release_time(std::string_view target, bool& starts_stall) {
    auto now = clock_type::now();
    auto at = now;
    if (auto q = target.find("delay_ms="); q != std::string_view::npos)
      at += std::chrono::milliseconds(std::stoi(std::string(target.substr(q + 9))));
    std::lock_guard lock(mutex);
    starts_stall = stall_armed && now >= stall_armed_at;
    if (starts_stall) {
      stall_armed = false;
      stall_started = now;
      stall_until = now + stall_length;
    }
    return std::max(at, stall_until);
  }

  void do_accept();
};

namespace {

struct session : std::enable_shared_from_this<session> {
  session(test_http_server::state& s, tcp::socket socket)
      : server(s), stream(std::move(socket)), timer(server.io) {}
  test_http_server::state& server;
  boost::beast::tcp_stream stream;
  boost::beast::flat_buffer buffer;
  boost::beast::http::request<boost::beast::http::string_body> request;
  boost::beast::http::response<boost::beast::http::string_body> response;
  boost::asio::steady_timer timer;
  bool started_stall = false;

  void do_read() {
    request = {};
    boost::beast::http::async_read(stream, buffer, request,
                                   [self = shared_from_this()](boost::system::error_code ec,
                                                               std::size_t) { self->on_read(ec); });
  }
  void on_read(boost::system::error_code ec) {
    if (ec) return;  // the client closed, or the server is stopping
    ++server.requests;
    auto release_at = server.release_time(request.target(), started_stall);
    response = {};
    response.result(status_of(request.target()));
    response.version(request.version());
    response.set(boost::beast::http::field::content_type, "text/plain");
    {
      std::lock_guard lock(server.mutex);
      if (!server.server_timing.empty()) response.set("Server-Timing", server.server_timing);
    }
    response.body() = "ok";
    response.keep_alive(request.keep_alive());
    response.prepare_payload();
    timer.expires_at(release_at);
    timer.async_wait([self = shared_from_this()](boost::system::error_code) {
      if (self->started_stall) {
        std::lock_guard lock(self->server.mutex);
        self->server.stall_released = clock_type::now();
      }
      self->do_write();
    });
  }
  void do_write() {
    boost::beast::http::async_write(
        stream, response, [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
          if (ec) return;
          if (!self->response.keep_alive()) {
            boost::system::error_code ignored;
            self->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
            return;
          }
          self->do_read();
        });
  }
};

}  // namespace

void test_http_server::state::do_accept() {
  acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec) return;
    socket.set_option(tcp::no_delay(true));
    std::make_shared<session>(*this, std::move(socket))->do_read();
    do_accept();
  });
}

test_http_server::test_http_server() : st_(std::make_unique<state>()) {
  st_->do_accept();
  st_->thread = std::thread([s = st_.get()] { s->io.run(); });
}

test_http_server::~test_http_server() {
  st_->io.stop();
  st_->thread.join();
}

std::string test_http_server::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(st_->acceptor.local_endpoint().port()) + path;
}

void test_http_server::set_server_timing(const std::string& header) {
  std::lock_guard lock(st_->mutex);
  st_->server_timing = header;
}

void test_http_server::stall_once(double after, double length) {
  std::lock_guard lock(st_->mutex);
  st_->stall_armed_at = clock_type::now() + to_duration(after);
  st_->stall_length = to_duration(length);
  st_->stall_armed = true;
}

double test_http_server::stall_seconds() const {
  std::lock_guard lock(st_->mutex);
  if (st_->stall_released < st_->stall_started) return 0;
  return std::chrono::duration<double>(st_->stall_released - st_->stall_started).count();
}

std::uint64_t test_http_server::requests() const { return st_->requests; }

}  // namespace headroom::test
