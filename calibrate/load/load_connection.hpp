// One keep-alive connection of the open-loop generator and the request/response cycle on it:
// connect, write the request, read the response. Each asynchronous step is a named member that
// handles its own error first (as in Beast's examples) and hands the outcome to its owner, the
// worker (load_worker.hpp), which decides what the connection does next.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>

namespace headroom::calibrate {

using load_clock = std::chrono::steady_clock;

// One request of the schedule, from its intended send time until it is answered or given up.
struct scheduled_request {
  load_clock::time_point intended;
  int target;            // index into the run's targets
  bool measured;         // false during warmup
  bool retried = false;  // already resent once after a stale keep-alive connection
  // One deadline for the whole request (connect, write and read together): set when it is first
  // handed to a connection, kept by a resend.
  load_clock::time_point deadline = load_clock::time_point::max();
};

// Short, stable names for what went wrong, so reports from different runs add up.
std::string error_kind(const boost::system::error_code& ec);

class load_connection {
 public:
  using response_type = boost::beast::http::response<boost::beast::http::string_body>;

  // What a connection tells its owner: the outcome of each step.
  class events {
   public:
    virtual void on_connected(load_connection& c) = 0;
    virtual void on_response(load_connection& c, load_clock::time_point at) = 0;
    virtual void on_failure(load_connection& c, boost::system::error_code ec) = 0;

   protected:
    ~events() = default;
  };

  load_connection(boost::asio::io_context& io, events& owner, int target);

  // Then on_connected or on_failure.
  void connect(const boost::asio::ip::tcp::resolver::results_type& endpoints);
  // Writes the request and reads its response (sets sent_at); then on_response or on_failure.
  void send(const std::string& request_bytes);

  // True when the peer has closed this idle connection (a non-blocking peek reads end-of-file).
  bool closed_by_peer();
  // Its deadline passed: closes the socket, so the pending step fails (as a timeout).
  void expire();
  // Ends the pending step now (the run is over); the step fails with operation_aborted.
  void abort();
  void close();

  int target() const { return target_; }
  const response_type& response() const { return parser_->get(); }
  bool response_keeps_alive() const { return parser_->keep_alive(); }
  // False when not a byte of a response came back (a stale keep-alive connection, e.g.).
  bool got_part_of_response() const { return parser_ && parser_->got_some(); }

  scheduled_request request{};  // the request on this connection now
  load_clock::time_point deadline = load_clock::time_point::max();  // its request's; max if idle
  bool timed_out = false;
  load_clock::time_point sent_at{};
  std::uint64_t responses = 0;  // on this connection so far: 0 means freshly connected
  std::list<std::unique_ptr<load_connection>>::iterator self;  // its place in the worker's list

 private:
  void on_connect(boost::system::error_code ec);
  void on_write(boost::system::error_code ec);
  void on_read(boost::system::error_code ec);

  // A plain socket whose deadline the worker checks in a periodic sweep: beast::tcp_stream would
  // arm and cancel a timer on every read and write, which costs more than the request at high
  // rates.
  boost::asio::ip::tcp::socket socket_;
  events& owner_;
  int target_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::response_parser<boost::beast::http::string_body>> parser_;
};

}  // namespace headroom::calibrate
