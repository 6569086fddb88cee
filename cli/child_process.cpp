// Child processes for `headroom demo` (child_process.hpp).
#include "child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace headroom::cli {
namespace {

std::atomic<int> received_signal{0};

extern "C" void on_stop_signal(int sig) { received_signal.store(sig); }

int decode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

// Opens `path` for the child's fd `target` (truncating), in the child only.
void redirect(const std::string& path, int target) {
  if (path.empty()) return;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || ::dup2(fd, target) < 0) _exit(126);
  ::close(fd);
}

std::string temp_file() {
  const char* dir = std::getenv("TMPDIR");
  std::string path = std::string(dir && *dir ? dir : "/tmp") + "/headroom-child-XXXXXX";
  int fd = ::mkstemp(path.data());
  if (fd < 0) throw std::runtime_error("cannot create a temporary file: " + std::string(std::strerror(errno)));
  ::close(fd);
  return path;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

void record_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: waitpid returns EINTR so the signal can be forwarded
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

int stop_signal() { return received_signal.load(); }

child_process::child_process(const std::vector<std::string>& argv, const std::string& stdout_file,
                             const std::string& stderr_file) {
  if (argv.empty()) throw std::invalid_argument("child_process: no program");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // A pipe closed on exec tells the parent whether exec worked (and errno if not).
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) throw std::runtime_error("pipe: " + std::string(std::strerror(errno)));
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork: " + std::string(std::strerror(errno)));
  if (pid_ == 0) {
    ::close(report[0]);
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) _exit(127);  // the parent died before prctl took effect
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGINT, &dfl, nullptr);
    ::sigaction(SIGTERM, &dfl, nullptr);
    redirect(stdout_file, STDOUT_FILENO);
    redirect(stderr_file, STDERR_FILENO);
    ::execvp(args[0], args.data());
    int err = errno;
    [[maybe_unused]] auto n = ::write(report[1], &err, sizeof err);
    _exit(127);
  }
  ::close(report[1]);
  int err = 0;
  ssize_t n;
  do n = ::read(report[0], &err, sizeof err);
  while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n == static_cast<ssize_t>(sizeof err)) {
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    throw std::runtime_error("cannot run " + argv[0] + ": " + std::strerror(err));
  }
}

child_process::~child_process() {
  if (pid_ > 0 && status_ < 0) stop(2.0);
}

bool child_process::running() {
  if (pid_ <= 0 || status_ >= 0) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = decode(st);
    return false;
  }
  return r == 0;
}

int child_process::wait() {
  if (pid_ <= 0) return 127;
  bool forwarded = false;
  while (status_ < 0) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, 0);
    if (r == pid_) {
      status_ = decode(st);
    } else if (r < 0 && errno == EINTR) {
      if (int sig = stop_signal(); sig != 0 && !forwarded) {
        ::kill(pid_, sig);
        forwarded = true;
      }
    } else if (r < 0) {
      status_ = 1;  // ECHILD: reaped elsewhere
    }
  }
  return status_;
}

int child_process::stop(double grace) {
  if (!running()) return status_ < 0 ? 0 : status_;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace);
  while (running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (running()) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    status_ = decode(st);
  }
  return status_;
}

int run_program(const std::vector<std::string>& argv) {
  child_process p(argv);
  return p.wait();
}

std::string run_program_output(const std::vector<std::string>& argv) {
  const std::string out = temp_file(), err = temp_file();
  int rc;
  {
    child_process p(argv, out, err);
    rc = p.wait();
  }
  std::string stdout_text = slurp(out), stderr_text = slurp(err);
  ::unlink(out.c_str());
  ::unlink(err.c_str());
  if (rc != 0) {
    while (!stderr_text.empty() && stderr_text.back() == '\n') stderr_text.pop_back();
    const auto nl = stderr_text.rfind('\n');
    const std::string last = nl == std::string::npos ? stderr_text : stderr_text.substr(nl + 1);
    throw std::runtime_error(argv[0] + " failed (exit " + std::to_string(rc) + ")" +
                             (last.empty() ? "" : ": " + last));
  }
  return stdout_text;
}

}  // namespace headroom::cli
