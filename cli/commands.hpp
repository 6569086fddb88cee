// Subcommands of `headroom`; each add_* registers one on the app.
#pragma once

#include <CLI/CLI.hpp>

namespace headroom::cli {

void add_load_command(CLI::App& app);     // load_command.cpp
void add_predict_command(CLI::App& app);  // predict_command.cpp
void add_calibrate_command(CLI::App& app);  // calibrate_command.cpp
void add_validate_command(CLI::App& app);   // validate_command.cpp
void add_sweep_command(CLI::App& app);      // sweep_command.cpp
void add_report_command(CLI::App& app);     // report_command.cpp
void add_plan_command(CLI::App& app);       // plan_command.cpp
void add_demo_command(CLI::App& app);       // demo_command.cpp

// A subcommand's callback sets the process exit code here (CLI11 callbacks return void).
void set_exit_code(int rc);
int exit_code();

}  // namespace headroom::cli
