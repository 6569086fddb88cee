// One HTTP GET with Boost.Beast, blocking: each step is an asynchronous operation run to
// completion on a private io_context, because only asynchronous operations honour the stream's
// deadline (tcp_stream::expires_at); a synchronous read could wait forever on a stuck server.
#include "metrics_scrape.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <utility>

#include "target_url.hpp"

namespace headroom::calibrate {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

std::string describe(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return "timed out";
  if (ec == net::error::connection_refused) return "connection refused";
  if (ec == http::error::end_of_stream || ec == net::error::eof)
    return "the server closed the connection before answering";
  return ec.message();
}

http_reply send(http::verb verb, const std::string& url, double timeout, const std::string& accept,
                const std::string& json_body) {
  const http_target target = parse_target_url(url);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(timeout));
  auto fail = [&](const std::string& problem) -> metrics_scrape_error {
    return metrics_scrape_error(url + ": " + problem);
  };

  net::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  tcp::resolver::results_type endpoints;
  bool resolved = false;
  resolver.async_resolve(target.host, target.port,
                         [&](beast::error_code e, tcp::resolver::results_type r) {
                           ec = e;
                           endpoints = std::move(r);
                           resolved = true;
                         });
  ioc.run_until(deadline);
  if (!resolved) {
    resolver.cancel();
    ioc.restart();
    ioc.run();  // lets the cancelled handler finish before its captures go away
    throw fail("resolving " + target.host + " timed out");
  }
  if (ec) throw fail("cannot resolve " + target.host + ": " + ec.message());

  beast::tcp_stream stream(ioc);
  stream.expires_at(deadline);  // one deadline for connect, write and read together
  auto run = [&] {
    ioc.restart();
    ioc.run();
  };
  stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
  run();
  if (ec) throw fail(describe(ec));

  http::request<http::string_body> req{verb, target.path, 11};
  req.set(http::field::host, target.host + ":" + target.port);
  req.set(http::field::user_agent, "headroom-calibrate");
  req.set(http::field::accept, accept);
  req.set(http::field::accept_encoding, "identity");
  req.set(http::field::connection, "close");
  if (!json_body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = json_body;
  }
  req.prepare_payload();
  http::async_write(stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
  run();
  if (ec) throw fail(describe(ec));

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);  // node_exporter on a big host sends a few MB
  http::async_read(stream, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
  run();
  if (ec) throw fail(describe(ec));
  auto& res = parser.get();
  return http_reply{res.result_int(), std::string(res.reason()), std::move(res.body())};
}

}  // namespace

http_reply http_get(const std::string& url, double timeout, const std::string& accept) {
  return send(http::verb::get, url, timeout, accept, "");
}

http_reply http_request(const std::string& method, const std::string& url, double timeout,
                        const std::string& json_body) {
  const http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) throw std::invalid_argument("unknown HTTP method " + method);
  return send(verb, url, timeout, "application/json", json_body);
}

std::string fetch_metrics_text(const std::string& url, double timeout) {
  http_reply reply;
  try {
    // The classic text format, not OpenMetrics or protobuf (no compression: http_get asks none).
    reply = http_get(url, timeout, "text/plain;version=0.0.4;q=1,*/*;q=0.1");
  } catch (const metrics_scrape_error& e) {
    throw metrics_scrape_error(std::string("cannot scrape ") + e.what());
  }
  if (reply.status != 200)
    throw metrics_scrape_error("cannot scrape " + url + ": HTTP " + std::to_string(reply.status) +
                               " " + reply.reason);
  return std::move(reply.body);
}

metrics_snapshot scrape_metrics(const std::string& url, double timeout) {
  const std::string text = fetch_metrics_text(url, timeout);
  try {
    return metrics_snapshot::parse(text);
  } catch (const metrics_text_error& e) {
    // e.what() starts with "not Prometheus text: "
    throw metrics_scrape_error(url + " is " + e.what());
  }
}

}  // namespace headroom::calibrate
