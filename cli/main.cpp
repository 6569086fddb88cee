// The `headroom` command: one CLI11 app, one file per subcommand.
#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"headroom: capacity planning for database-backed HTTP services, calibrated by live benchmarks"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  // Bad input is one line on stderr, as from the commands themselves (CLI11 adds a second).
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "headroom: " + std::string(e.what()) + "\n";
  });
  headroom::cli::add_load_command(app);
  headroom::cli::add_predict_command(app);
  headroom::cli::add_calibrate_command(app);
  headroom::cli::add_validate_command(app);
  headroom::cli::add_sweep_command(app);
  headroom::cli::add_report_command(app);
  headroom::cli::add_plan_command(app);
  headroom::cli::add_demo_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 exits 0 for --help; bad input is exit code 2 everywhere in Headroom.
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::cerr << "headroom: " << e.what() << "\n";
    return 1;
  }
  return headroom::cli::exit_code();
}
