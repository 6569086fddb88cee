// headroom load: placeholder until its issue lands (prints so and exits 2).
#include <iostream>

#include "commands.hpp"

namespace headroom::cli {
void add_load_command(CLI::App& app) {
  auto* sub = app.add_subcommand("load", "not built yet");
  sub->callback([] {
    std::cerr << "headroom load: not built yet\n";
    set_exit_code(2);
  });
}
}  // namespace headroom::cli
