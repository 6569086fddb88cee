// Parsing of `headroom load --target` URLs (target_url.hpp).
#include "target_url.hpp"

namespace headroom::calibrate {

http_target parse_target_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind("https://", 0) == 0)
    throw load_input_error("https is not supported (plain http only): " + url);
  if (url.rfind(scheme, 0) != 0)
    throw load_input_error("invalid URL (expected http://host[:port]/path): " + url);
  std::string rest = url.substr(scheme.size());
  auto slash = rest.find_first_of("/?");
  std::string authority = rest.substr(0, slash);
  http_target t;
  t.url = url;
  t.path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (t.path.front() == '?') t.path = "/" + t.path;
  if (authority.find('@') != std::string::npos)
    throw load_input_error("invalid URL (user info is not supported): " + url);
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
    auto close = authority.find(']');
    if (close == std::string::npos) throw load_input_error("invalid URL: " + url);
    t.host = authority.substr(1, close - 1);
    std::string after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') throw load_input_error("invalid URL: " + url);
    t.port = after.empty() ? "80" : after.substr(1);
  } else {
    auto colon = authority.rfind(':');
    t.host = authority.substr(0, colon);
    t.port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
  }
  if (t.host.empty()) throw load_input_error("invalid URL (no host): " + url);
  if (t.port.empty() || t.port.size() > 5 ||
      t.port.find_first_not_of("0123456789") != std::string::npos || std::stoi(t.port) == 0 ||
      std::stoi(t.port) > 65535)
    throw load_input_error("invalid URL (bad port): " + url);
  for (char c : t.path)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
      throw load_input_error("invalid URL (space or control character in the path): " + url);
  return t;
}

}  // namespace headroom::calibrate
