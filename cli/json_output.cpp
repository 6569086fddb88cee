// `--json [FILE]` for every command (json_output.hpp).
#include "json_output.hpp"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <stdexcept>

namespace headroom::cli {

CLI::Option* add_json_option(CLI::App* app, json_output& out, const std::string& what) {
  return app
      ->add_option_function<std::string>(
          "--json",
          [&out](const std::string& file) {
            out.requested = true;
            out.file = file;
          },
          what + " as JSON (seconds): to stdout instead of the text with no FILE or '-', else to FILE")
      ->expected(0, 1)
      ->type_name("[FILE]");
}

void write_json(const json_output& out, const boost::json::value& v) {
  if (!out.requested) return;
  write_text(out, boost::json::serialize(v) + "\n");
}

void write_text(const json_output& out, const std::string& text) {
  if (!out.requested) return;
  if (out.to_stdout()) {
    std::cout << text << std::flush;
    return;
  }
  const std::string tmp = out.file + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << text;
    f.close();
    if (!f) {
      std::remove(tmp.c_str());
      throw std::runtime_error("cannot write " + out.file);
    }
  }
  if (std::rename(tmp.c_str(), out.file.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write " + out.file);
  }
}

void check_writable(const json_output& out) {
  if (!out.to_file()) return;
  const std::string tmp = out.file + ".tmp";
  std::ofstream f(tmp, std::ios::trunc);
  if (!f) throw std::runtime_error("cannot write " + out.file);
  f.close();
  std::remove(tmp.c_str());
}

}  // namespace headroom::cli
