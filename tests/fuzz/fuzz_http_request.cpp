// Fuzz target: a whole HTTP request, as bytes from a client, through the service's own reading
// (Beast's parser with the service's limits, header first then body, as the session reads it),
// routing and, for POST /, the body parser: everything but the socket, the pool and the database.
// The first byte sets how many bytes each read returns (1 to 256), so a request also arrives
// split the way TCP may split it.
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "http_server.hpp"
#include "request_routing.hpp"

namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// Every answer is a JSON body with a status the service documents.
void check(const headroom::reply& r) {
  if (r.status < 200 || r.status > 599 || r.body.empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t read_size = std::size_t{data[0]} + 1;
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);

  boost::asio::io_context ioc;
  beast::test::stream client(ioc, bytes);
  client.read_size(read_size);
  client.close_remote();  // the bytes are all the client sends, then it closes

  const headroom::server_options opt;  // the service's default limits
  beast::flat_buffer buffer;
  // Keep-alive: the same connection may carry several requests, each with a new parser.
  for (int request = 0; request < 16; ++request) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(opt.body_limit);
    parser.header_limit(static_cast<std::uint32_t>(opt.header_limit));
    beast::error_code ec;
    http::read_header(client, buffer, parser, ec);
    if (!ec) http::read(client, buffer, parser, ec);
    if (ec == http::error::end_of_stream || ec == boost::asio::error::eof) return 0;
    if (ec) {
      // The session answers these and closes; anything else it closes without an answer.
      if (auto r = headroom::route_unreadable(ec, parser, opt.body_limit, opt.header_limit))
        check(r->answer);
      return 0;
    }
    auto req = parser.release();
    const headroom::route to = headroom::route_request(req, /*pprof=*/true, /*pool_admin=*/true);
    if (to.kind == headroom::route_kind::answer) check(to.answer);
    if (to.kind == headroom::route_kind::find_people) {
      try {
        headroom::parse_age(req.body());
      } catch (const headroom::bad_request& e) {
        check(headroom::error_reply(e.status, e.what()));
      }
    }
    if (to.kind == headroom::route_kind::pool_limits && req.method() == http::verb::put) {
      try {
        headroom::parse_pool_change(req.body());
      } catch (const headroom::bad_request& e) {
        check(headroom::error_reply(e.status, e.what()));
      }
    }
    if (!req.keep_alive()) return 0;
  }
  return 0;
}
