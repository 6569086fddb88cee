// A small HTTP/1.1 keep-alive server for the load generator's tests: answers every request with
// 200 "ok" (or ?status=N), optionally a Server-Timing header, a per-request delay (?delay_ms=N)
// and one server-wide stall on demand. Runs on its own thread on 127.0.0.1 and a free port.
#pragma once

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace headroom::test {

class test_http_server {
  using tcp = boost::asio::ip::tcp;
  using clock_type = std::chrono::steady_clock;

 public:
  test_http_server()
      : acceptor_(io_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
    do_accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~test_http_server() {
    io_.stop();
    thread_.join();
  }
  test_http_server(const test_http_server&) = delete;
  test_http_server& operator=(const test_http_server&) = delete;

  std::string url(const std::string& path = "/") const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + path;
  }
  void set_server_timing(const std::string& header) {
    std::lock_guard lock(mutex_);
    server_timing_ = header;
  }
  // The first request that arrives `after` seconds from now starts a stall of `length` seconds:
  // no response leaves the server until it ends (like a GC pause or a lock held too long).
  void stall_once(double after, double length) {
    std::lock_guard lock(mutex_);
    stall_armed_at_ = clock_type::now() + to_duration(after);
    stall_length_ = to_duration(length);
    stall_armed_ = true;
  }
  std::uint64_t requests() const { return requests_; }

 private:
  static clock_type::duration to_duration(double s) {
    return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(s));
  }

  struct session : std::enable_shared_from_this<session> {
    session(test_http_server& s, tcp::socket socket)
        : server(s), stream(std::move(socket)), timer(server.io_) {}
    test_http_server& server;
    boost::beast::tcp_stream stream;
    boost::beast::flat_buffer buffer;
    boost::beast::http::request<boost::beast::http::string_body> request;
    boost::beast::http::response<boost::beast::http::string_body> response;
    boost::asio::steady_timer timer;

    void do_read() {
      request = {};
      boost::beast::http::async_read(
          stream, buffer, request,
          [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
            self->on_read(ec);
          });
    }
    void on_read(boost::system::error_code ec) {
      if (ec) return;  // the client closed, or the server is stopping
      ++server.requests_;
      auto release_at = server.release_time(request.target());
      response = {};
      response.result(status_of(request.target()));
      response.version(request.version());
      response.set(boost::beast::http::field::content_type, "text/plain");
      {
        std::lock_guard lock(server.mutex_);
        if (!server.server_timing_.empty()) response.set("Server-Timing", server.server_timing_);
      }
      response.body() = "ok";
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      timer.expires_at(release_at);
      timer.async_wait(
          [self = shared_from_this()](boost::system::error_code) { self->do_write(); });
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

  static unsigned status_of(std::string_view target) {
    auto q = target.find("status=");
    return q == std::string_view::npos
               ? 200u
               : static_cast<unsigned>(std::stoi(std::string(target.substr(q + 7))));
  }

  // When the response to a request arriving now may leave.
  clock_type::time_point release_time(std::string_view target) {
    auto now = clock_type::now();
    auto at = now;
    if (auto q = target.find("delay_ms="); q != std::string_view::npos)
      at += std::chrono::milliseconds(std::stoi(std::string(target.substr(q + 9))));
    std::lock_guard lock(mutex_);
    if (stall_armed_ && now >= stall_armed_at_) {
      stall_armed_ = false;
      stall_until_ = now + stall_length_;
    }
    return std::max(at, stall_until_);
  }

  void do_accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) return;
      socket.set_option(tcp::no_delay(true));
      std::make_shared<session>(*this, std::move(socket))->do_read();
      do_accept();
    });
  }

  boost::asio::io_context io_{1};
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::mutex mutex_;
  std::string server_timing_;
  bool stall_armed_ = false;
  clock_type::time_point stall_armed_at_{};
  clock_type::duration stall_length_{};
  clock_type::time_point stall_until_{};
  std::atomic<std::uint64_t> requests_{0};
};

}  // namespace headroom::test
