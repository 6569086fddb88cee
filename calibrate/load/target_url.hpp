// The URLs `headroom load` sends to: http://host[:port][/path][?query], checked before the run,
// and the error type for every bad input the command refuses.
#pragma once

#include <stdexcept>
#include <string>

namespace headroom::calibrate {

// Bad input from the user (URL, rate, file, unreachable target): the CLI exits 2 on it.
struct load_input_error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct http_target {
  std::string url;
  std::string host;
  std::string port;
  std::string path;  // with the query, "/" when empty
};

// http://host[:port][/path][?query]; throws load_input_error (https is not supported).
http_target parse_target_url(const std::string& url);

}  // namespace headroom::calibrate
