// `--json [FILE]`, the same on every headroom command: `--json` or `--json -` prints the JSON on
// stdout instead of the text report; `--json FILE` writes FILE (whole or not at all) and the
// text report still goes to stdout.
#pragma once

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <string>

namespace headroom::cli {

struct json_output {
  bool requested = false;
  std::string file;  // "" or "-" = stdout
  bool to_stdout() const { return requested && (file.empty() || file == "-"); }
  bool to_file() const { return requested && !to_stdout(); }
};

CLI::Option* add_json_option(CLI::App* app, json_output& out, const std::string& what);

// Writes `v` where `out` says (nothing if --json was not given). A file is written to a
// temporary name beside it and renamed, so a reader never sees half a report. Throws
// std::runtime_error naming the file if it cannot be written.
void write_json(const json_output& out, const boost::json::value& v);

// The same for any other machine-readable text (headroom sweep's --csv [FILE]).
void write_text(const json_output& out, const std::string& text);

// Checks early (before a long run) that FILE can be created; throws std::runtime_error.
void check_writable(const json_output& out);

}  // namespace headroom::cli
