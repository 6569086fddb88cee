// Where a request goes, and the answer to one that could not be read: the HTTP layer's decisions
// without sockets, threads or the pool, so the server and its fuzz target run the same code.
#pragma once

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <optional>

#include "people_handler.hpp"

namespace headroom {

enum class route_kind {
  answer,       // `answer` is the whole reply (404, 405, /healthz, a read error)
  metrics,      // GET /metrics: the metrics' text
  find_people,  // POST /: the handler, on a worker
  ready,        // GET /readyz: the handler, on a worker
  cpu_profile,  // GET /debug/pprof/profile (with --pprof): the profiler, for `seconds`
  pool_limits,  // GET or PUT /pool (with --pool-admin): the handler, at once
};

struct route {
  route_kind kind = route_kind::answer;
  const char* label = "other";  // the `path` label of http_request_seconds
  reply answer;
  int seconds = 0;  // cpu_profile: how long to profile
};

// Routes are a fixed set, which bounds the `path` label of http_request_seconds.
const char* path_label(std::string_view path);

// `pprof`: the service runs with --pprof; without it the profile's path is unknown (404), as in
// a Go program that does not import net/http/pprof. `pool_admin`: likewise for /pool
// (--pool-admin), which lets a calibration change the pool's limits while the service runs.
route route_request(const boost::beast::http::request<boost::beast::http::string_body>& req,
                    bool pprof = false, bool pool_admin = false);

// A request the parser rejected (`ec` not a network error): the answer it deserves (413 body too
// large, 431 headers too large, 400 malformed), or nothing when the connection should just close.
std::optional<route> route_unreadable(
    boost::beast::error_code ec,
    const boost::beast::http::request_parser<boost::beast::http::string_body>& parser,
    std::size_t body_limit, std::size_t header_limit);

}  // namespace headroom
