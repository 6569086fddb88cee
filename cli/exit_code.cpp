// The exit code a subcommand's callback chose.
#include "commands.hpp"

namespace headroom::cli {
namespace {
int g_exit_code = 0;
}
void set_exit_code(int rc) { g_exit_code = rc; }
int exit_code() { return g_exit_code; }
}  // namespace headroom::cli
