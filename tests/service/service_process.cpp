// The definitions of service_process.hpp's test helpers, compiled once (see the header).
#include "service_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace headroom::test {

std::string env(const char* name) {
  if (const char* v = std::getenv(name); v && *v) return v;
  const std::string n = name;
#ifdef HEADROOM_TEST_FALLBACK_PG_DIR
  if (n == "HEADROOM_PG_DIR") return HEADROOM_TEST_FALLBACK_PG_DIR;
#endif
#ifdef HEADROOM_TEST_FALLBACK_SOURCE_DIR
  if (n == "HEADROOM_SOURCE_DIR") return HEADROOM_TEST_FALLBACK_SOURCE_DIR;
#endif
#ifdef HEADROOM_TEST_FALLBACK_BINARY_DIR
  if (n == "HEADROOM_BINARY_DIR") return HEADROOM_TEST_FALLBACK_BINARY_DIR;
#endif
  throw std::runtime_error(n + " is not set (run the test under CTest)");
}

std::string run(const std::string& command) {
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) throw std::runtime_error("cannot run: " + command);
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = ::pclose(p);
  if (status != 0)
    throw std::runtime_error("command failed (" + std::to_string(status) + "): " + command);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string pg_dsn() {
  return run(env("HEADROOM_SOURCE_DIR") + "/scripts/pg dsn --dir " + env("HEADROOM_PG_DIR"));
}

int dsn_port(const std::string& dsn) {
  std::smatch m;
  if (!std::regex_search(dsn, m, std::regex("port=([0-9]+)")))
    throw std::runtime_error("no port in DSN: " + dsn);
  return std::stoi(m[1]);
}

void pg_stop() {
  run(env("HEADROOM_SOURCE_DIR") + "/scripts/pg stop --dir " + env("HEADROOM_PG_DIR") + " 2>&1");
}

void pg_start(int port) {
  run(env("HEADROOM_SOURCE_DIR") + "/scripts/pg start --dir " + env("HEADROOM_PG_DIR") +
      " --port " + std::to_string(port) + " 2>&1");
}

std::vector<pid_t> pg_processes(std::string dir) {
  if (dir.empty()) dir = env("HEADROOM_PG_DIR");
  const std::string pidfile = dir + "/data/postmaster.pid";
  FILE* f = std::fopen(pidfile.c_str(), "r");
  if (!f) throw std::runtime_error("cannot read " + pidfile + ": is PostgreSQL running?");
  long postmaster = 0;
  const int got = std::fscanf(f, "%ld", &postmaster);
  std::fclose(f);
  if (got != 1 || postmaster <= 0) throw std::runtime_error("no pid in " + pidfile);
  std::vector<pid_t> pids{static_cast<pid_t>(postmaster)};
  const std::string all = run("cat /proc/[0-9]*/stat 2>/dev/null || true");
  // Each line: pid (comm) state ppid ...; comm may hold spaces, so read from the last ')'.
  std::size_t pos = 0;
  while (pos < all.size()) {
    std::size_t end = all.find('\n', pos);
    if (end == std::string::npos) end = all.size();
    const std::string line = all.substr(pos, end - pos);
    pos = end + 1;
    const auto paren = line.rfind(')');
    if (paren == std::string::npos) continue;
    char state = 0;
    long ppid = 0;
    if (std::sscanf(line.c_str() + paren + 1, " %c %ld", &state, &ppid) == 2 && ppid == postmaster)
      pids.push_back(static_cast<pid_t>(std::stol(line)));
  }
  return pids;
}

std::string process_cmdline(pid_t pid) {
  FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/cmdline").c_str(), "r");
  if (!f) return {};
  std::string s;
  char buf[512];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, f)) s.append(buf, n);
  std::fclose(f);
  std::replace(s.begin(), s.end(), '\0', ' ');
  return s;
}

int open_fds(pid_t pid) {
  return std::stoi(run("ls /proc/" + std::to_string(pid) + "/fd | wc -l"));
}

private_postgres::private_postgres(int max_connections) : max_connections_(max_connections) {
  char dir[] = "/tmp/headroom-test-pg-XXXXXX";
  if (!::mkdtemp(dir)) throw std::runtime_error("cannot create a folder under /tmp");
  dir_ = dir;
  // Its messages go to a log in the folder, which is kept if this throws.
  run(script("start") + " >/dev/null 2>" + dir_ + "/start.log");
  dsn_ = run(script("dsn"));
  port_ = dsn_port(dsn_);
}

private_postgres::~private_postgres() {
  try {
    run(script("destroy") + " >/dev/null 2>&1");
  } catch (...) {
  }
}

void private_postgres::start() {
  run(script("start") + " --port " + std::to_string(port_) + " >/dev/null 2>>" + dir_ +
      "/start.log");
}

std::vector<pid_t> private_postgres::backends() const {
  std::vector<pid_t> out;
  const auto all = processes();
  for (std::size_t i = 1; i < all.size(); ++i)
    if (process_cmdline(all[i]).rfind("postgres: headroom ", 0) == 0) out.push_back(all[i]);
  return out;
}

std::string private_postgres::script(const std::string& command) const {
  return env("HEADROOM_SOURCE_DIR") + "/scripts/pg " + command + " --dir " + dir_ +
         " --max-connections " + std::to_string(max_connections_);
}

pg_freezer::pg_freezer(double safety) {
  pids_ = pg_processes();
  ::kill(pids_.front(), SIGSTOP);
  // Children forked just before the postmaster stopped are found on the second look.
  pids_ = pg_processes();
  // Built by appending: GCC 12 warns wrongly (-Wrestrict) on a chain of string + here.
  std::string script = "sleep ";
  script += std::to_string(static_cast<int>(safety));
  script += "; kill -CONT";
  for (pid_t p : pids_) {
    script += ' ';
    script += std::to_string(p);
  }
  // In a process group of its own, so that resume() ends the shell and its sleep together,
  // and off the test's output, which CTest reads until every writer has closed it.
  const char* argv[] = {"/bin/sh", "-c", script.c_str(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  if (::posix_spawn(&safety_net_, "/bin/sh", &actions, &attr, const_cast<char**>(argv),
                    environ) != 0)
    safety_net_ = -1;
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  for (pid_t p : pids_) ::kill(p, SIGSTOP);
}

void pg_freezer::resume() {
  if (resumed_) return;
  resumed_ = true;
  for (auto p = pids_.rbegin(); p != pids_.rend(); ++p) ::kill(*p, SIGCONT);
  if (safety_net_ > 0) {
    ::kill(-safety_net_, SIGKILL);
    int status = 0;
    ::waitpid(safety_net_, &status, 0);
  }
}

service_process::service_process(const std::vector<std::string>& args, double startup_timeout,
                                 const std::string& dsn) {
  const std::string binary = env("HEADROOM_BINARY_DIR") + "/service/headroom-service";
  std::vector<std::string> argv_s{binary, "--dsn", dsn.empty() ? pg_dsn() : dsn, "--port", "0"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  const int rc = ::posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  out_ = fds[0];
  if (rc != 0) {
    ::close(out_);
    throw std::runtime_error("cannot start " + binary);
  }
  const std::string line = read_line(startup_timeout);
  static const std::regex listening(
      R"(^headroom-service listening on http://127\.0\.0\.1:([0-9]+)$)");
  std::smatch m;
  if (!std::regex_match(line, m, listening)) {
    kill_now();
    throw std::runtime_error("unexpected first line from headroom-service: '" + line + "'");
  }
  port_ = static_cast<unsigned short>(std::stoi(m[1]));
}

service_process::~service_process() {
  kill_now();
  if (out_ >= 0) ::close(out_);
}

void service_process::signal(int sig) const { ::kill(pid_, sig); }

std::optional<int> service_process::wait_exit(double timeout) {
  if (exit_code_) return exit_code_;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_code_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string service_process::read_line(double timeout) {
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill_now();
      throw std::runtime_error("headroom-service did not print its listening line in time");
    }
    pollfd p{out_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char c;
    const ssize_t n = ::read(out_, &c, 1);
    if (n <= 0) {
      const auto code = wait_exit(5);
      throw std::runtime_error("headroom-service exited before listening (exit " +
                               (code ? std::to_string(*code) : std::string("?")) + ")");
    }
    if (c == '\n') return line;
    line += c;
  }
}

void service_process::kill_now() {
  if (pid_ > 0 && !exit_code_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    exit_code_ = 128 + SIGKILL;
  }
}

std::string http_reply::header(std::string name) const {
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

struct http_client::connection {
  connection(unsigned short port, double timeout) : stream_(ioc_), timeout_(timeout) {
    namespace net = boost::asio;
    endpoint_ = net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port);
    connect();
  }

  // Sends a request (Host and Content-Length are added) and reads the response.
  http_reply request(const std::string& method, const std::string& target,
                     const std::string& body = "",
                     const std::map<std::string, std::string>& headers = {}) {
    namespace http = boost::beast::http;
    if (!stream_.socket().is_open()) connect();
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, "127.0.0.1");
    for (auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    if (!body.empty() || method == "POST" || method == "PUT") req.prepare_payload();
    const auto t0 = std::chrono::steady_clock::now();
    boost::beast::error_code ec;
    stream_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(timeout_)));
    http::async_write(stream_, req, [&](boost::beast::error_code e, std::size_t) { ec = e; });
    run();
    if (ec) throw std::runtime_error("HTTP write failed: " + ec.message());
    return read_reply(t0);
  }

  // Sends `bytes` as they are (for malformed requests) and reads one
  // response; status 0 if the server closed the connection instead.
  http_reply raw(const std::string& bytes) {
    if (!stream_.socket().is_open()) connect();  // not timed, as in request()
    const auto t0 = std::chrono::steady_clock::now();
    if (write_raw(bytes)) {
      http_reply r;
      r.keep_alive = false;
      return r;
    }
    return read_reply(t0);
  }

  // Sends `bytes` and returns without reading (for slow-client tests).
  void raw_send_only(const std::string& bytes) {
    if (const auto ec = write_raw(bytes)) throw std::runtime_error("write failed: " + ec.message());
  }

  // Writes `bytes` as they are, connecting first if need be.
  boost::beast::error_code write_raw(const std::string& bytes) {
    if (!stream_.socket().is_open()) connect();
    boost::beast::error_code ec;
    stream_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(timeout_)));
    boost::asio::async_write(stream_, boost::asio::buffer(bytes),
                             [&](boost::beast::error_code e, std::size_t) { ec = e; });
    run();
    return ec;
  }

  // Waits up to `within` seconds for the server to close the connection.
  // Returns the seconds it took, or nothing if it stayed open. Data the
  // server sends meanwhile is discarded.
  std::optional<double> wait_for_close(double within) {
    const auto t0 = std::chrono::steady_clock::now();
    stream_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(within)));
    char buf[4096];
    while (true) {
      boost::beast::error_code ec;
      std::size_t n = 0;
      stream_.async_read_some(boost::asio::buffer(buf),
                              [&](boost::beast::error_code e, std::size_t k) {
                                ec = e;
                                n = k;
                              });
      run();
      if (!ec && n > 0) continue;
      if (ec == boost::beast::error::timeout) return std::nullopt;
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
  }

  void close() {
    boost::beast::error_code ec;
    stream_.socket().close(ec);
  }

  void connect() {
    boost::beast::error_code ec;
    stream_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(timeout_)));
    stream_.async_connect(endpoint_, [&](boost::beast::error_code e) { ec = e; });
    run();
    if (ec)
      throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(endpoint_.port()) +
                               ": " + ec.message());
    stream_.socket().set_option(boost::asio::ip::tcp::no_delay(true), ec);
    buffer_.clear();
  }

  void run() {
    ioc_.restart();
    ioc_.run();
  }

  http_reply read_reply(std::chrono::steady_clock::time_point t0) {
    namespace http = boost::beast::http;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    boost::beast::error_code ec;
    http::async_read(stream_, buffer_, parser,
                     [&](boost::beast::error_code e, std::size_t) { ec = e; });
    run();
    http_reply r;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (ec) {
      if (ec == boost::beast::error::timeout) throw std::runtime_error("HTTP response timed out");
      // Closed (or reset) without a complete response.
      close();
      r.keep_alive = false;
      return r;
    }
    auto msg = parser.release();
    r.status = static_cast<int>(msg.result_int());
    for (const auto& f : msg) {
      std::string name(f.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      r.headers[name] = std::string(f.value());
    }
    r.body = std::move(msg.body());
    r.keep_alive = msg.keep_alive();
    if (!r.keep_alive) close();
    return r;
  }

  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  boost::asio::ip::tcp::endpoint endpoint_;
  double timeout_;
};

http_client::http_client(unsigned short port, double timeout)
    : c_(std::make_unique<connection>(port, timeout)) {}
http_client::~http_client() = default;

http_reply http_client::request(const std::string& method, const std::string& target,
                                const std::string& body,
                                const std::map<std::string, std::string>& headers) {
  return c_->request(method, target, body, headers);
}
http_reply http_client::raw(const std::string& bytes) { return c_->raw(bytes); }
void http_client::raw_send_only(const std::string& bytes) { c_->raw_send_only(bytes); }
std::optional<double> http_client::wait_for_close(double within) {
  return c_->wait_for_close(within);
}
void http_client::close() { c_->close(); }

std::optional<double> metric_value(const std::string& text, const std::string& series) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    if (line.size() > series.size() && line.substr(0, series.size()) == series &&
        line[series.size()] == ' ')
      return std::stod(std::string(line.substr(series.size() + 1)));
    pos = end + 1;
  }
  return std::nullopt;
}

}  // namespace headroom::test
