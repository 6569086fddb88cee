// headroom predict: placeholder until its issue lands (prints so and exits 2).
#include <iostream>

#include "commands.hpp"

namespace headroom::cli {
void add_predict_command(CLI::App& app) {
  auto* sub = app.add_subcommand("predict", "not built yet");
  sub->callback([] {
    std::cerr << "headroom predict: not built yet\n";
    set_exit_code(2);
  });
}
}  // namespace headroom::cli
