// The CPU profile endpoint's pieces (see cpu_profile.hpp): the `seconds` parameter, and one
// gperftools profile at a time, ended by a timer so that no thread waits for it.
#include "cpu_profile.hpp"

#include <gperftools/profiler.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include "duration.hpp"

namespace headroom {

namespace net = boost::asio;
using steady = std::chrono::steady_clock;

int profile_seconds(std::string_view target) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return default_profile_seconds;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const std::string_view name = param.substr(0, param.find('='));
    if (name != "seconds") continue;
    const std::string_view value = param.substr(std::min(param.size(), name.size() + 1));
    int s = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), s);
    if (value.empty() || ec != std::errc() || end != value.data() + value.size() || s < 1 ||
        s > max_profile_seconds)
      // Cut, so that a long parameter still makes a one-line answer.
      throw bad_request(400, "seconds must be a whole number from 1 to " +
                                 std::to_string(max_profile_seconds) + ", not '" +
                                 std::string(value.substr(0, 32)) + "'");
    return s;
  }
  return default_profile_seconds;
}

cpu_profiler::~cpu_profiler() {
  // The service stopped while a profile ran: its timer will not fire now.
  if (!file_.empty()) {
    ProfilerStop();
    ::unlink(file_.c_str());
  }
}

void cpu_profiler::take(const net::any_io_executor& ex, int seconds,
                        std::function<void(reply)> done) {
  std::unique_lock lk(mu_);
  if (timer_) {
    const double left = std::max(0.0, std::chrono::duration<double>(ends_ - steady::now()).count());
    lk.unlock();
    reply r =
        error_reply(409, "a CPU profile is already running; it ends in " + format_duration(left));
    r.headers.emplace_back("Retry-After", std::to_string(static_cast<int>(std::ceil(left))));
    return done(std::move(r));
  }
  const char* tmp = std::getenv("TMPDIR");
  const std::string dir = tmp && *tmp ? tmp : "/tmp";
  std::string file = dir + "/headroom-cpu-XXXXXX";
  const int fd = ::mkstemp(file.data());
  if (fd < 0) {
    const std::string why = std::strerror(errno);
    lk.unlock();
    return done(
        error_reply(500, "cannot create a file for the CPU profile in " + dir + ": " + why));
  }
  ::close(fd);
  if (!ProfilerStart(file.c_str())) {
    ::unlink(file.c_str());
    lk.unlock();
    return done(error_reply(
        500, "gperftools' CPU profiler did not start (is CPUPROFILE set in the environment?)"));
  }
  file_ = std::move(file);
  done_ = std::move(done);
  ends_ = steady::now() + std::chrono::seconds(seconds);
  timer_ = std::make_shared<net::steady_timer>(ex, std::chrono::seconds(seconds));
  // Cancelled (finish_now) or expired alike: the client gets what was sampled.
  timer_->async_wait([this, keep = timer_](boost::system::error_code) { finish(); });
}

void cpu_profiler::finish_now() {
  std::lock_guard lk(mu_);
  // The timer belongs to its executor's thread: cancel it there.
  if (timer_) net::post(timer_->get_executor(), [t = timer_] { t->cancel(); });
}

void cpu_profiler::finish() {
  // Stopping flushes the samples to the file and closes it.
  ProfilerStop();
  std::unique_lock lk(mu_);
  reply r;
  std::ifstream in(file_, std::ios::binary);
  if (!in) {
    r = error_reply(500, "cannot read the CPU profile from " + file_);
  } else {
    r.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    r.content_type = "application/octet-stream";
    // As Go's net/http/pprof: a browser saves it instead of showing bytes.
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"profile\"");
  }
  ::unlink(file_.c_str());
  file_.clear();
  timer_.reset();
  auto done = std::move(done_);
  done_ = nullptr;
  lk.unlock();
  done(std::move(r));
}

}  // namespace headroom
