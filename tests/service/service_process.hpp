// Test helpers for black-box tests of headroom-service: start the built binary
// on a free port and wait for its "listening" line, signal and reap it, stop
// and restart (or freeze) the test PostgreSQL, a private PostgreSQL for tests that kill it,
// and a tiny blocking HTTP/1.1 client (Boost.Beast) with timeouts, keep-alive, and raw-bytes
// requests.
//
// Declarations only: the definitions are in service_process.cpp, compiled once into the
// library headroom_test_service (tests/CMakeLists.txt). Inline in this header, the Beast client
// and std::regex cost about 55 s of compiler CPU in every test file that included it (ASan
// build), a quarter of CI's build time.
//
// Environment (set by tests/CMakeLists.txt's HEADROOM_TEST_ENV):
//   HEADROOM_PG_DIR      the test cluster started by the `postgres` CTest fixture
//   HEADROOM_SOURCE_DIR  for scripts/pg
//   HEADROOM_BINARY_DIR  for service/headroom-service
//
// Typical use:
//   headroom::test::service_process svc({"--max-idle", "0"});
//   headroom::test::http_client c(svc.port());
//   auto r = c.request("POST", "/", R"({"Age": 30})");
//   REQUIRE(r.status == 200);
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace headroom::test {

// The value of an environment variable the tests need; throws if unset.
// Falls back to the paths CMake compiled into the library (HEADROOM_TEST_FALLBACK_*),
// because catch_discover_tests passes only the first element of a list-valued
// ENVIRONMENT property to the tests it registers.
std::string env(const char* name);

// Runs a shell command and returns its standard output without the final
// newline; throws if it exits non-zero.
std::string run(const std::string& command);

// The DSN of the fixture's PostgreSQL.
std::string pg_dsn();

// The port in a "host=... port=P ..." DSN.
int dsn_port(const std::string& dsn);

// Stops the fixture's PostgreSQL (a fast shutdown: open connections break).
void pg_stop();

// Starts it again on the same port, so a running service's DSN still works.
void pg_start(int port);

// The processes of the PostgreSQL cluster in `dir` (the fixture's unless told): the postmaster
// (from postmaster.pid in its data directory) first, then its children (backends,
// checkpointer, ...), found through /proc.
std::vector<pid_t> pg_processes(std::string dir = {});

// The command line of a process, its NUL separators as spaces; empty once it is gone.
std::string process_cmdline(pid_t pid);

// How many descriptors a process has open (entries of /proc/PID/fd).
int open_fds(pid_t pid);

// A PostgreSQL cluster of the test's own (scripts/pg in a fresh folder under /tmp), for tests
// that kill it or change its settings: the shared fixture, and the tests using it, are not
// hit. Destroyed with the object. Creating one takes a few seconds (initdb, 10,000 rows).
class private_postgres {
 public:
  explicit private_postgres(int max_connections = 200);
  ~private_postgres();
  private_postgres(const private_postgres&) = delete;
  private_postgres& operator=(const private_postgres&) = delete;

  const std::string& dsn() const { return dsn_; }
  const std::string& dir() const { return dir_; }

  // Starts it again on the same port (after a stop or a kill), so a running service's DSN
  // still works; returns once it accepts connections.
  void start();

  std::vector<pid_t> processes() const { return pg_processes(dir_); }

  // The backends serving clients (process title "postgres: USER DATABASE HOST(PORT) STATE"),
  // as opposed to the checkpointer, the WAL writer and the other helpers.
  std::vector<pid_t> backends() const;

 private:
  std::string script(const std::string& command) const;

  int max_connections_;
  std::string dir_;
  std::string dsn_;
  int port_ = 0;
};

// Freezes the fixture's PostgreSQL with SIGSTOP (postmaster first, so that it forks no new
// backend, then all its children): the database stops answering without closing anything,
// as a hung host would. The destructor sends SIGCONT, so a failing test never leaves it
// stopped; a detached `sleep; kill -CONT` resumes it after `safety` seconds even if this
// process dies without unwinding. Only for tests that run alone (RUN_SERIAL).
class pg_freezer {
 public:
  explicit pg_freezer(double safety = 60);
  ~pg_freezer() { resume(); }
  pg_freezer(const pg_freezer&) = delete;
  pg_freezer& operator=(const pg_freezer&) = delete;

  // Sends SIGCONT to every process stopped (children first, then the postmaster).
  void resume();
  std::size_t processes() const { return pids_.size(); }

 private:
  std::vector<pid_t> pids_;
  pid_t safety_net_ = -1;
  bool resumed_ = false;
};

// A headroom-service child process. The constructor returns once the service
// printed "headroom-service listening on http://127.0.0.1:PORT"; the
// destructor kills it (SIGKILL) if it still runs.
class service_process {
 public:
  // `args` come after --dsn <DSN> --port 0, so they may override the port. The DSN is the
  // fixture's unless `dsn` names another database.
  explicit service_process(const std::vector<std::string>& args = {}, double startup_timeout = 20,
                           const std::string& dsn = {});
  ~service_process();
  service_process(const service_process&) = delete;
  service_process& operator=(const service_process&) = delete;

  unsigned short port() const { return port_; }
  pid_t pid() const { return pid_; }
  void signal(int sig) const;

  // Waits up to `timeout` seconds for the process to end. Returns its exit
  // code (128 + signal number if a signal ended it), or nothing on timeout.
  std::optional<int> wait_exit(double timeout);

 private:
  std::string read_line(double timeout);
  void kill_now();

  pid_t pid_ = -1;
  int out_ = -1;
  unsigned short port_ = 0;
  std::optional<int> exit_code_;
};

// One HTTP response as the client saw it.
struct http_reply {
  int status = 0;  // 0: the server closed the connection without answering
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  double seconds = 0;  // from starting to send the request to the end of the response
  bool keep_alive = true;

  // The header's value, or "" if absent. `name` in any case.
  std::string header(std::string name) const;
};

// A blocking HTTP/1.1 client over one keep-alive connection to 127.0.0.1.
// Each operation runs its own io_context until done or `timeout` seconds
// pass (then the connection is closed and the call throws). Not thread-safe:
// use one client per thread.
class http_client {
 public:
  explicit http_client(unsigned short port, double timeout = 30);
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  // Sends a request (Host and Content-Length are added) and reads the response.
  http_reply request(const std::string& method, const std::string& target,
                     const std::string& body = "",
                     const std::map<std::string, std::string>& headers = {});

  // Sends `bytes` as they are (for malformed requests) and reads one
  // response; status 0 if the server closed the connection instead.
  http_reply raw(const std::string& bytes);

  // Sends `bytes` and returns without reading (for slow-client tests).
  void raw_send_only(const std::string& bytes);

  // Waits up to `within` seconds for the server to close the connection.
  // Returns the seconds it took, or nothing if it stayed open. Data the
  // server sends meanwhile is discarded.
  std::optional<double> wait_for_close(double within);

  void close();

 private:
  struct connection;  // the Beast stream and its io_context
  std::unique_ptr<connection> c_;
};

// The value of one series in Prometheus text output, e.g.
// metric_value(text, "headroom_pool_dials_total") or
// metric_value(text, R"(http_request_seconds_count{code="200",path="/"})").
// Nothing if the series is absent.
std::optional<double> metric_value(const std::string& text, const std::string& series);

}  // namespace headroom::test
