// Server-Timing parsing: `metric *( OWS ";" OWS param )` separated by commas, param `name=value`
// where value is a token or a quoted string (https://www.w3.org/TR/server-timing/).
#include "server_timing.hpp"

#include <charconv>
#include <cmath>

namespace headroom::calibrate {
namespace {

bool is_token_char(char c) {
  if (c >= 'a' && c <= 'z') return true;
  if (c >= 'A' && c <= 'Z') return true;
  if (c >= '0' && c <= '9') return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_token_char(c)) return false;
  return true;
}

// Splits on `sep` outside double quotes (a quoted desc may contain commas and semicolons).
std::vector<std::string_view> split_unquoted(std::string_view s, char sep, bool& unbalanced) {
  std::vector<std::string_view> parts;
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quoted && c == '\\') {
      ++i;  // escaped character inside a quoted string
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == sep && !quoted) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(s.substr(start));
  unbalanced = quoted;
  return parts;
}

}  // namespace

server_timing_parse parse_server_timing(std::string_view header) {
  server_timing_parse out;
  bool unbalanced = false;
  auto metrics = split_unquoted(header, ',', unbalanced);
  if (unbalanced) out.malformed = true;
  for (auto raw_metric : metrics) {
    auto metric = trim(raw_metric);
    if (metric.empty()) continue;  // empty list elements are allowed by HTTP list syntax
    bool ignored = false;
    auto params = split_unquoted(metric, ';', ignored);
    auto name = trim(params[0]);
    if (!is_token(name)) {
      out.malformed = true;
      continue;
    }
    bool have_dur = false;
    bool bad = false;
    double ms = 0;
    for (std::size_t i = 1; i < params.size(); ++i) {
      auto param = trim(params[i]);
      auto eq = param.find('=');
      auto pname = trim(param.substr(0, eq));
      if (!is_token(pname)) {
        bad = true;
        break;
      }
      if (eq == std::string_view::npos) continue;  // a bare param name carries no value
      auto value = trim(param.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      if (pname.size() == 3 && (pname[0] | 0x20) == 'd' && (pname[1] | 0x20) == 'u' &&
          (pname[2] | 0x20) == 'r') {
        if (have_dur) continue;  // the spec says: use the first dur, ignore the rest
        double v = 0;
        auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
        if (ec != std::errc{} || end != value.data() + value.size() || !std::isfinite(v) || v < 0) {
          bad = true;
          break;
        }
        have_dur = true;
        ms = v;
      }
    }
    if (bad) {
      out.malformed = true;
      continue;
    }
    if (have_dur) out.entries.push_back({std::string(name), ms / 1000.0});
  }
  return out;
}

}  // namespace headroom::calibrate
