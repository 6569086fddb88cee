// A private Prometheus for tests: Debian's /usr/bin/prometheus on a free 127.0.0.1 port, data in
// a fresh temporary folder, scraping itself and the given targets every second. The constructor
// returns once it answers /-/ready; the destructor stops it and removes the folder.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "metrics_scrape.hpp"

extern char** environ;

namespace headroom::test {

class prometheus_process {
 public:
  // `service_targets`: "127.0.0.1:PORT" scraped as job `headroom-service` (the name
  // scripts/observe gives them).
  explicit prometheus_process(const std::vector<std::string>& service_targets = {}) {
    dir_ = std::filesystem::temp_directory_path() /
           ("headroom-test-prometheus-" + std::to_string(::getpid()) + "-" +
            std::to_string(counter()++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    port_ = free_port();
    {
      std::ofstream config(dir_ / "prometheus.yml");
      config << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
             << "scrape_configs:\n"
             << "  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:"
             << port_ << "']\n";
      if (!service_targets.empty()) {
        config << "  - job_name: headroom-service\n    static_configs:\n      - targets: [";
        for (std::size_t i = 0; i < service_targets.size(); ++i)
          config << (i ? ", '" : "'") << service_targets[i] << "'";
        config << "]\n";
      }
    }
    std::vector<std::string> args{
        "/usr/bin/prometheus", "--config.file=" + (dir_ / "prometheus.yml").string(),
        "--storage.tsdb.path=" + (dir_ / "data").string(),
        "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = (dir_ / "prometheus.log").string();
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int rc = ::posix_spawn(&pid_, args[0].c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start /usr/bin/prometheus");
    wait_ready(30);
  }
  ~prometheus_process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  prometheus_process(const prometheus_process&) = delete;
  prometheus_process& operator=(const prometheus_process&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  unsigned short port() const { return port_; }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }
  static unsigned short free_port() {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(
        io, {boost::asio::ip::make_address("127.0.0.1"), 0});  // the kernel picks a free port
    return a.local_endpoint().port();
  }
  void wait_ready(double timeout) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("prometheus exited at start; see " +
                                 (dir_ / "prometheus.log").string());
      }
      try {
        if (calibrate::http_get(url() + "/-/ready", 1, "*/*").status == 200) return;
      } catch (const calibrate::metrics_scrape_error&) {
        // not listening yet
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("prometheus not ready within " + std::to_string(timeout) + " s");
  }

  std::filesystem::path dir_;
  unsigned short port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace headroom::test
