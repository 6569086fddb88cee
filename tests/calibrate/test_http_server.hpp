// A small HTTP/1.1 keep-alive server for the load generator's tests: answers every request with
// 200 "ok" (or ?status=N), optionally a Server-Timing header, a per-request delay (?delay_ms=N)
// and one server-wide stall on demand. Runs on its own thread on 127.0.0.1 and a free port.
// Declarations only: the Beast server is compiled once, in test_http_server.cpp (the library
// headroom_test_http_server), not in every test file that starts one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace headroom::test {

class test_http_server {
 public:
  test_http_server();
  ~test_http_server();
  test_http_server(const test_http_server&) = delete;
  test_http_server& operator=(const test_http_server&) = delete;

  std::string url(const std::string& path = "/") const;
  void set_server_timing(const std::string& header);
  // The first request that arrives `after` seconds from now starts a stall of `length` seconds:
  // no response leaves the server until it ends (like a GC pause or a lock held too long).
  void stall_once(double after, double length);
  // How long the stall of stall_once really held responses back: from the arrival of the
  // request that started it to when the server began writing that request's response (at least
  // `length`; more when this thread ran late on a loaded machine). 0 until that write began.
  double stall_seconds() const;
  std::uint64_t requests() const;

  struct state;

 private:
  std::unique_ptr<state> st_;
};

}  // namespace headroom::test
