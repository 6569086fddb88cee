// The HTTP/1.1 keep-alive server of headroom-service (Boost.Beast): routing,
// body and time limits, the bound on requests in the handler and the threads for their dials
// (the only blocking database calls), and graceful shutdown on SIGTERM/SIGINT.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "metrics.hpp"
#include "people_handler.hpp"
#include "service_defaults.hpp"

namespace headroom {

struct server_options {
  std::string host = "127.0.0.1";
  unsigned short port = 8080;  // 0 = any free port
  int io_threads = 0;          // 0 = one per hardware core
  // Requests in the handler at once (more wait: phase `queue`), and threads for their dials.
  int workers = service_defaults::workers;
  std::size_t body_limit = 64 * 1024;   // bytes; larger bodies get 413
  std::size_t header_limit = 8 * 1024;  // bytes; larger headers get 431
  double header_timeout = 10;  // seconds to receive a request's headers (also idle keep-alive)
  double body_timeout = 10;    // seconds to receive its body (and to write a response)
  double drain_timeout = 10;   // seconds to finish in-flight requests at shutdown
  // Client connections open at once; past it a new connection gets a 503 and is closed. Far
  // above what one instance serves usefully (C10k), yet a bound on descriptors and memory
  // (an idle keep-alive connection costs about 7 KiB here: 10000 is about 70 MB).
  int max_connections = 10000;
  bool pprof = false;       // serve GET /debug/pprof/profile (cpu_profile.hpp)
  bool pool_admin = false;  // serve GET and PUT /pool (people_handler::pool_limits)
};

class http_server {
 public:
  http_server(const server_options& opt, people_handler& handler, service_metrics& metrics);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // Binds, listens and starts the I/O and worker threads. Returns the port.
  // Throws std::system_error if the address cannot be bound.
  unsigned short start();
  // Blocks until SIGTERM or SIGINT, stops accepting, closes idle keep-alive
  // connections and waits for in-flight requests. Returns true if all were
  // answered within the drain timeout.
  bool wait_for_signal_and_drain();
  // Stops the threads. With `workers_done` false (drain timed out) it does
  // not wait for worker threads that may be blocked in the database.
  void stop(bool workers_done);

  // Defined in http_server.cpp; public only so that its sessions can name it.
  struct state;

 private:
  std::unique_ptr<state> st_;
};

}  // namespace headroom
