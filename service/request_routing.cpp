// The service's routes and its answers to unreadable requests (see request_routing.hpp).
#include "request_routing.hpp"

#include <boost/beast/http/error.hpp>
#include <string>

#include "cpu_profile.hpp"

namespace headroom {

namespace http = boost::beast::http;

const char* path_label(std::string_view path) {
  for (const char* p : {"/", "/metrics", "/healthz", "/readyz", "/debug/pprof/profile", "/pool"})
    if (path == p) return p;
  return "other";
}

route route_request(const http::request<http::string_body>& req, bool pprof, bool pool_admin) {
  const std::string_view target(req.target().data(), req.target().size());
  const std::string_view path = target.substr(0, target.find('?'));
  route r;
  r.label = path_label(path);
  // Paths served only with their flag are unknown without it (404, naming the flag).
  struct gated {
    const char* path;
    bool on;
    const char* flag;
  };
  for (const gated g : {gated{"/debug/pprof/profile", pprof, "--pprof"},
                        gated{"/pool", pool_admin, "--pool-admin"}})
    if (!g.on && std::string_view(r.label) == g.path) {
      r.label = "other";
      r.answer = error_reply(
          404, "no such path: " + std::string(path) + " (needs " + std::string(g.flag) + ")");
      return r;
    }
  const std::string_view l(r.label);
  if (l == "other") {
    r.answer = error_reply(404, "no such path: " + std::string(path));
    return r;
  }
  if (l == "/pool" && (req.method() == http::verb::get || req.method() == http::verb::put)) {
    r.kind = route_kind::pool_limits;
    return r;
  }
  const http::verb want = l == "/" ? http::verb::post : http::verb::get;
  if (req.method() != want) {
    const std::string allowed = l == "/pool" ? "GET, PUT" : std::string(http::to_string(want));
    r.answer = error_reply(405, "method " + std::string(req.method_string()) +
                                    " is not allowed on " + std::string(path) + "; use " +
                                    (l == "/pool" ? "GET or PUT" : allowed));
    r.answer.headers.emplace_back("Allow", allowed);
    return r;
  }
  if (l == "/healthz") {
    r.answer.body = R"({"status":"ok"})";
  } else if (l == "/metrics") {
    r.kind = route_kind::metrics;
  } else if (l == "/") {
    r.kind = route_kind::find_people;
  } else if (l == "/debug/pprof/profile") {
    try {
      r.seconds = profile_seconds(target);
      r.kind = route_kind::cpu_profile;
    } catch (const bad_request& e) {
      r.answer = error_reply(e.status, e.what());
    }
  } else {
    r.kind = route_kind::ready;
  }
  return r;
}

std::optional<route> route_unreadable(boost::beast::error_code ec,
                                      const http::request_parser<http::string_body>& parser,
                                      std::size_t body_limit, std::size_t header_limit) {
  route r;
  if (ec == http::error::body_limit) {
    r.answer =
        error_reply(413, "request body is larger than " + std::to_string(body_limit) + " bytes");
    // The request line is parsed before any header (Content-Length may be
    // what tripped the limit); if it was not, the target is empty.
    const auto target = parser.get().target();
    r.label =
        path_label(std::string_view(target.data(), target.size()).substr(0, target.find('?')));
    // Every answer to POST / carries Server-Timing, even this one.
    if (std::string_view(r.label) == "/" && parser.get().method() == http::verb::post)
      r.answer.headers.emplace_back("Server-Timing", server_timing(phase_times{}));
    return r;
  }
  if (ec == http::error::header_limit) {
    r.answer = error_reply(
        431, "request headers are larger than " + std::to_string(header_limit) + " bytes");
    return r;
  }
  if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
    r.answer = error_reply(400, "malformed HTTP request: " + ec.message());
    return r;
  }
  return std::nullopt;
}

}  // namespace headroom
