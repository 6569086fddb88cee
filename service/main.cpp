// headroom-service: the reference service that Headroom measures and models.
// Flags and environment, wiring of pool, handler, metrics and HTTP server,
// the "listening" line, and a clean exit on SIGTERM/SIGINT.
#include <arpa/inet.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <thread>

#include "http_server.hpp"
#include "metrics.hpp"
#include "people_handler.hpp"
#include "real_pool.hpp"

namespace {

int fail(const std::string& message, int code) {
  std::cerr << "headroom-service: " << message << std::endl;
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace headroom;
  CLI::App app{
      "headroom-service: POST / with {\"Age\": N} answers the people of that age from "
      "PostgreSQL, through a connection pool with Go database/sql rules. Also GET /metrics "
      "(Prometheus), /healthz, /readyz."};
  std::string dsn;
  server_options opt;
  pool_config pool;
  std::string go = to_string(pool.go);  // the study's Go 1.10 unless told
  std::optional<std::string> order;     // unset: the Go version's rule
  double wait_timeout = 5;
  std::size_t body_limit = opt.body_limit;
  int port = opt.port;
  app.add_option("--dsn", dsn,
                 "PostgreSQL connection string (libpq), e.g. 'host=127.0.0.1 port=5432 "
                 "dbname=people user=headroom'")
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
      ->check(ip_address)
      ->capture_default_str();
  app.add_option("--port", port, "port to listen on; 0 picks a free one")
      ->envname("HEADROOM_PORT")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--io-threads", opt.io_threads, "threads for network I/O; 0 = one per core")
      ->envname("HEADROOM_IO_THREADS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--workers", opt.workers, "threads for blocking database calls")
      ->envname("HEADROOM_WORKERS")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--max-open", pool.max_open,
                 "most open connections; 0 = unlimited (Go SetMaxOpenConns)")
      ->envname("HEADROOM_MAX_OPEN")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option(
         "--max-idle", pool.max_idle,
         "most idle connections kept; negative = 0; clamped to --max-open (Go SetMaxIdleConns)")
      ->envname("HEADROOM_MAX_IDLE")
      ->capture_default_str();
  app.add_option("--max-lifetime", pool.max_lifetime,
                 "seconds a connection may live; 0 = forever (Go SetConnMaxLifetime)")
      ->envname("HEADROOM_MAX_LIFETIME")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-idle-time", pool.max_idle_time,
                 "seconds a connection may stay idle; 0 = forever (Go SetConnMaxIdleTime)")
      ->envname("HEADROOM_MAX_IDLE_TIME")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--pool-wait-timeout", wait_timeout,
                 "seconds a request may wait for a connection before a 503; 0 = forever")
      ->envname("HEADROOM_POOL_WAIT_TIMEOUT")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
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
  app.add_option("--body-limit", body_limit, "largest request body in bytes; larger gets 413")
      ->envname("HEADROOM_BODY_LIMIT")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30))
      ->capture_default_str();
  app.add_option("--header-timeout", opt.header_timeout,
                 "seconds to receive a request's headers, also the idle keep-alive limit")
      ->envname("HEADROOM_HEADER_TIMEOUT")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--body-timeout", opt.body_timeout,
                 "seconds to receive a request's body or write a response")
      ->envname("HEADROOM_BODY_TIMEOUT")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--drain-timeout", opt.drain_timeout,
                 "seconds to finish in-flight requests on SIGTERM/SIGINT")
      ->envname("HEADROOM_DRAIN_TIMEOUT")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(std::string(e.what()) + " (see --help)", 2);
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

  try {
    pg_pool connections(pool, [dsn] { return dial_postgres(dsn); });
    service_metrics metrics([&connections] { return connections.stats(); }, pool);
    people_handler handler(connections, wait_timeout);
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
