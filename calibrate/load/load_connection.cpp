// One keep-alive connection of the open-loop generator (load_connection.hpp).
#include "load_connection.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace headroom::calibrate {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {
constexpr std::uint64_t body_limit = 64 * 1024 * 1024;
}

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

load_connection::load_connection(asio::io_context& io, events& owner, int target)
    : socket_(io), owner_(owner), target_(target) {}

void load_connection::connect(const tcp::resolver::results_type& endpoints) {
  asio::async_connect(socket_, endpoints,
                      [this](error_code ec, const tcp::endpoint&) { on_connect(ec); });
}

void load_connection::on_connect(error_code ec) {
  if (ec) return owner_.on_failure(*this, ec);
  socket_.set_option(tcp::no_delay(true), ec);
  owner_.on_connected(*this);
}

void load_connection::send(const std::string& request_bytes) {
  sent_at = load_clock::now();
  parser_.reset();  // nothing of this request's response has come back yet
  asio::async_write(socket_, asio::buffer(request_bytes),
                    [this](error_code ec, std::size_t) { on_write(ec); });
}

void load_connection::on_write(error_code ec) {
  if (ec) return owner_.on_failure(*this, ec);
  parser_.emplace();
  parser_->body_limit(body_limit);
  http::async_read(socket_, buffer_, *parser_,
                   [this](error_code ec2, std::size_t) { on_read(ec2); });
}

void load_connection::on_read(error_code ec) {
  if (ec) return owner_.on_failure(*this, ec);
  ++responses;
  owner_.on_response(*this, load_clock::now());
}

bool load_connection::closed_by_peer() {
  char byte;
  ssize_t n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

void load_connection::expire() {
  timed_out = true;
  error_code ignored;
  socket_.close(ignored);
}

void load_connection::abort() {
  error_code ignored;
  socket_.cancel(ignored);
  socket_.close(ignored);
}

void load_connection::close() {
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace headroom::calibrate
