// headroom-service: the reference service that Headroom measures and models.
// Flags and environment, wiring of pool, handler, metrics and HTTP server,
// the "listening" line, and a clean exit on SIGTERM/SIGINT.
#include <arpa/inet.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <thread>

#include "duration_flag.hpp"
#include "http_server.hpp"
#include "metrics.hpp"
#include "people_handler.hpp"
#include "pg_timeouts.hpp"
#include "real_pool.hpp"
#include "service_defaults.hpp"

namespace {

int fail(const std::string& message, int code) {
  std::cerr << "headroom-service: " << message << std::endl;
  return code;
}

// Checks a duration flag's value before it is stored: `positive` or merely not negative.
CLI::Validator duration_check(bool positive) {
  return CLI::Validator(
      [positive](std::string& text) -> std::string {
        double s = 0;
        try {
          s = headroom::parse_duration(text);
        } catch (const std::invalid_argument& e) {
          return e.what();
        }
        if (positive && s <= 0) return "must be more than 0";
        if (s < 0) return "must not be negative";
        return {};
      },
      "");
}

// Each client connection and each database connection is a descriptor. Like Go programs
// (since Go 1.19), lift the soft limit on open files to the hard one, and say so if even
// that cannot hold --max-connections.
void raise_open_file_limit(int max_connections) {
  rlimit l{};
  if (getrlimit(RLIMIT_NOFILE, &l) != 0) return;
  if (l.rlim_cur < l.rlim_max) {
    l.rlim_cur = l.rlim_max;
    setrlimit(RLIMIT_NOFILE, &l);
    getrlimit(RLIMIT_NOFILE, &l);
  }
  // 64 for the process's own files, PostgreSQL connections under a small pool, and slack.
  const rlim_t needed = static_cast<rlim_t>(max_connections) + 64;
  if (l.rlim_cur != RLIM_INFINITY && l.rlim_cur < needed)
    std::cerr << "headroom-service: warning: the open-file limit (" << l.rlim_cur
              << ") is below --max-connections + 64; new connections may fail before the cap"
              << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace headroom;
  CLI::App app{
      "headroom-service: POST / with {\"Age\": N} answers the people of that age from "
      "PostgreSQL, through a connection pool with Go database/sql rules. Also GET /metrics "
      "(Prometheus), /healthz, /readyz, with --pprof GET /debug/pprof/profile?seconds=N (a "
      "CPU profile for google-pprof), and with --pool-admin GET and PUT /pool (the pool's "
      "limits)."};
  std::string dsn;
  server_options opt;
  pool_config pool;
  std::string go = to_string(pool.go);  // the study's Go 1.10 unless told
  std::optional<std::string> order;     // unset: the Go version's rule
  pool.max_open = service_defaults::max_open;
  pool.max_idle = service_defaults::max_idle;
  double wait_timeout = service_defaults::wait_timeout;
  pg_timeouts timeouts;
  std::size_t body_limit = opt.body_limit;
  int port = opt.port;
  app.add_option("--dsn", dsn,
                 "PostgreSQL connection string (libpq key=value or postgresql:// URI), e.g. "
                 "'host=127.0.0.1 port=5432 dbname=people user=headroom'")
      ->envname("HEADROOM_DSN")
      ->required();
  // Checked here so that a typo is a bad flag (exit 2), not a failure to bind.
  const CLI::Validator ip_address(
      [](std::string& s) {
        unsigned char buf[sizeof(in6_addr)];
        if (inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1)
          return std::string();
        return "'" + s + "' is not an IPv4 or IPv6 address";
      },
      "IP", "ip address");
  app.add_option("--host", opt.host, "address to listen on (an IP address)")
      ->envname("HEADROOM_HOST")
      ->type_name("IP")
      ->check(ip_address)
      ->capture_default_str();
  app.add_option("--port", port, "TCP port to listen on; 0 picks a free one")
      ->envname("HEADROOM_PORT")
      ->type_name("PORT")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--io-threads", opt.io_threads, "threads for network I/O; 0 = one per core")
      ->envname("HEADROOM_IO_THREADS")
      ->type_name("THREADS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option(
         "--workers", opt.workers,
         "requests handled at once (more wait, first come first served: the `queue` phase), "
         "and threads for their dials, which block (queries run on the I/O threads)")
      ->envname("HEADROOM_WORKERS")
      ->type_name("THREADS")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--max-open", pool.max_open,
                 "most open database connections; 0 = unlimited (Go SetMaxOpenConns)")
      ->envname("HEADROOM_MAX_OPEN")
      ->type_name("CONNECTIONS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-idle", pool.max_idle,
                 "most idle database connections kept; negative = 0; clamped to --max-open (Go "
                 "SetMaxIdleConns)")
      ->envname("HEADROOM_MAX_IDLE")
      ->type_name("CONNECTIONS")
      ->capture_default_str();
  add_duration_flag(&app, "--max-lifetime", pool.max_lifetime,
                    "how long a connection may live; 0 = forever (Go SetConnMaxLifetime)")
      ->envname("HEADROOM_MAX_LIFETIME")
      ->type_name("DURATION")
      ->check(duration_check(false));
  add_duration_flag(&app, "--max-idle-time", pool.max_idle_time,
                    "how long a connection may stay idle; 0 = forever (Go SetConnMaxIdleTime)")
      ->envname("HEADROOM_MAX_IDLE_TIME")
      ->type_name("DURATION")
      ->check(duration_check(false));
  add_duration_flag(&app, "--wait-timeout", wait_timeout,
                    "how long a request may wait for a pooled connection before a 503; 0 = "
                    "forever")
      ->envname("HEADROOM_WAIT_TIMEOUT")
      ->type_name("DURATION")
      ->check(duration_check(false));
  add_duration_flag(&app, "--connect-timeout", timeouts.connect,
                    "how long a dial to PostgreSQL may take; 0 = no limit, else at least 2s "
                    "(libpq's connect_timeout: whole seconds, rounded up, per address of the host)")
      ->envname("HEADROOM_CONNECT_TIMEOUT")
      ->type_name("DURATION")
      ->check(duration_check(false));
  add_duration_flag(&app, "--statement-timeout", timeouts.statement,
                    "how long a statement may run: PostgreSQL's statement_timeout, and 1s later "
                    "the service closes the connection itself if PostgreSQL did not answer; 0 = "
                    "no limit")
      ->envname("HEADROOM_STATEMENT_TIMEOUT")
      ->type_name("DURATION")
      ->check(duration_check(false));
  // Checked here so that a bad version is a bad flag (exit 2).
  const CLI::Validator go_release(
      [](std::string& s) {
        try {
          parse_go_version(s);
          return std::string();
        } catch (const std::invalid_argument& e) {
          return std::string(e.what());
        }
      },
      "1.N", "go version");
  app.add_option("--go-version", go,
                 "Go release whose database/sql pool rules to follow (DESIGN.md): 1.10 (the "
                 "study's), 1.15, 1.18 or 1.23; any 1.N from 1.10 on takes its release's profile")
      ->envname("HEADROOM_GO_VERSION")
      ->check(go_release)
      ->capture_default_str();
  app.add_option("--waiter-order", order,
                 "override which waiter gets a released connection: fifo (no Go since 1.8; "
                 "HikariCP, pgx) or random; unset = the Go version's rule (random)")
      ->envname("HEADROOM_WAITER_ORDER")
      ->check(CLI::IsMember({"fifo", "random"}));
  app.add_option("--body-limit", body_limit, "largest request body, in bytes; larger gets 413")
      ->envname("HEADROOM_BODY_LIMIT")
      ->type_name("BYTES")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30))
      ->capture_default_str();
  app.add_option("--max-connections", opt.max_connections,
                 "most client connections open at once; past it a new connection is answered "
                 "503 and closed")
      ->envname("HEADROOM_MAX_CONNECTIONS")
      ->type_name("CONNECTIONS")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  add_duration_flag(&app, "--header-timeout", opt.header_timeout,
                    "time to receive a request's headers, also the idle keep-alive limit")
      ->envname("HEADROOM_HEADER_TIMEOUT")
      ->type_name("DURATION")
      ->check(duration_check(true));
  add_duration_flag(&app, "--body-timeout", opt.body_timeout,
                    "time to receive a request's body or write a response")
      ->envname("HEADROOM_BODY_TIMEOUT")
      ->type_name("DURATION")
      ->check(duration_check(true));
  add_duration_flag(&app, "--drain-timeout", opt.drain_timeout,
                    "time to finish in-flight requests on SIGTERM/SIGINT")
      ->envname("HEADROOM_DRAIN_TIMEOUT")
      ->type_name("DURATION")
      ->check(duration_check(false));
  app.add_flag("--pool-admin", opt.pool_admin,
               "serve GET /pool (the pool's limits) and PUT /pool with {\"max_open\": N, "
               "\"max_idle\": N}, applied as Go's SetMaxOpenConns and SetMaxIdleConns on the "
               "running pool, so a calibration can measure more than one setting; off by default")
      ->envname("HEADROOM_POOL_ADMIN");
  app.add_flag("--pprof", opt.pprof,
               "serve GET /debug/pprof/profile?seconds=N (1-60, default 30): a CPU profile of the "
               "service in gperftools' format, for google-pprof; one at a time")
      ->envname("HEADROOM_PPROF");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(std::string(e.what()) + " (see --help)", 2);
  }
  std::string conninfo;
  try {
    conninfo = pg_conninfo(dsn, timeouts);
  } catch (const std::invalid_argument& e) {
    return fail(std::string("--dsn/--connect-timeout: ") + e.what() + " (see --help)", 2);
  }
  opt.port = static_cast<unsigned short>(port);
  opt.body_limit = body_limit;
  pool.go = parse_go_version(go);
  if (order) pool.order = parse_waiter_order(*order);
  pool.seed = std::random_device{}();
  try {
    validate(pool);  // e.g. --max-idle-time under --go-version 1.10
  } catch (const std::invalid_argument& e) {
    return fail(std::string(e.what()) + " (see --help)", 2);
  }

  raise_open_file_limit(opt.max_connections);

  try {
    // Outlives the pool, whose background thread dials through it.
    query_watchdog watchdog(timeouts.statement);
    pg_pool connections(pool, [&] { return dial_postgres(conninfo, &watchdog); });
    service_metrics metrics([&connections] { return connections.stats(); }, pool);
    people_handler handler(connections, wait_timeout, &watchdog);
    http_server server(opt, handler, metrics);
    const unsigned short bound = server.start();
    std::cout << "headroom-service listening on http://" << opt.host << ":" << bound << std::endl;
    const bool drained = server.wait_for_signal_and_drain();
    connections.close();
    if (!drained) {
      // Workers may be blocked in the database: do not wait for them.
      std::cerr << "headroom-service: drain timeout: exiting with requests still in flight"
                << std::endl;
      std::fflush(stdout);
      std::_Exit(0);
    }
    server.stop(true);
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what(), 1);
  }
}
