// Time limits on PostgreSQL (pg_timeouts.hpp): the DSN rewritten with connect_timeout and
// statement_timeout, and the watchdog thread that shuts down sockets whose round trip outlived
// its limit.
#include "pg_timeouts.hpp"

#include <libpq-fe.h>
#include <sys/socket.h>

#include <cmath>
#include <memory>
#include <pqxx/except>

namespace headroom {

namespace {

using steady = std::chrono::steady_clock;

// PostgreSQL's SQLSTATE for a statement cancelled, by statement_timeout among others.
constexpr const char* query_canceled = "57014";

// Seconds after statement_timeout before the watchdog acts: time for PostgreSQL's own timeout
// error to arrive, so that a working server always ends the statement first.
constexpr double answer_grace = 1.0;

// A conninfo value in single quotes, with ' and \ escaped as libpq reads them.
std::string quoted(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

}  // namespace

int libpq_connect_timeout(double seconds) {
  if (seconds <= 0) return 0;
  if (seconds < 2)
    throw std::invalid_argument(
        "a connect timeout must be 0 (none) or at least 2s: libpq's smallest limit");
  return static_cast<int>(std::ceil(seconds));
}

std::string pg_conninfo(const std::string& dsn, const pg_timeouts& t) {
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(dsn.c_str(), &error);
  if (!parsed) {
    std::string why = error ? error : "out of memory";
    PQfreemem(error);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    throw std::invalid_argument(why);
  }
  const std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(parsed,
                                                                             PQconninfoFree);
  const int connect = libpq_connect_timeout(t.connect);
  // statement_timeout is in milliseconds; 0 turns it off, as the flag's 0 does.
  const std::string statement =
      "-c statement_timeout=" + std::to_string(std::llround(t.statement * 1e3));
  std::string out;
  bool had_options = false;
  for (PQconninfoOption* o = parsed; o->keyword; ++o) {
    std::string value = o->val ? o->val : "";
    const std::string key = o->keyword;
    if (key == "connect_timeout") continue;
    if (key == "options") {
      had_options = true;
      value = value.empty() ? statement : value + " " + statement;
    }
    if (value.empty() && key != "options") continue;
    out += key + "=" + quoted(value) + " ";
  }
  if (!had_options) out += "options=" + quoted(statement) + " ";
  out += "connect_timeout=" + std::to_string(connect);
  return out;
}

query_watchdog::query_watchdog(double statement_timeout)
    : limit_(statement_timeout > 0 ? statement_timeout + answer_grace : 0) {
  if (limit_ > 0) thread_ = std::thread([this] { loop(); });
}

query_watchdog::~query_watchdog() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

query_watchdog::guard::guard(query_watchdog& w, int fd) : w_(w), fd_(fd) {
  if (w_.limit_ <= 0 || fd_ < 0) return;
  deadline_ = steady::now() + std::chrono::duration_cast<steady::duration>(
                                  std::chrono::duration<double>(w_.limit_));
  bool sooner;
  {
    std::lock_guard lk(w_.mu_);
    w_.watched_.insert(this);
    armed_ = true;
    sooner = deadline_ < w_.next_wake_;
  }
  // Every deadline is now + the same limit, so under load the thread is already due to wake
  // before this one: waking it for every query would cost two context switches per request.
  if (sooner) w_.cv_.notify_all();
}

void query_watchdog::guard::disarm() {
  if (w_.limit_ <= 0) return;
  std::lock_guard lk(w_.mu_);
  if (armed_) w_.watched_.erase(this);
  armed_ = false;
}

database_timeout unanswered(double limit) {
  return database_timeout("PostgreSQL did not answer within " +
                              std::to_string(static_cast<int>(std::lround(limit))) +
                              "s; the connection was closed",
                          true);
}

void throw_if_statement_timeout(const std::exception& e) {
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
      sql && sql->sqlstate() == query_canceled) {
    std::string why = e.what();
    while (!why.empty() && why.back() == '\n') why.pop_back();
    throw database_timeout(why, false);
  }
}

void query_watchdog::translate(const guard& g, const std::exception& e) const {
  if (g.fired()) throw unanswered(limit_);
  throw_if_statement_timeout(e);
}

void query_watchdog::loop() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    auto next = steady::time_point::max();
    const auto now = steady::now();
    for (guard* g : watched_) {
      if (g->fired_) continue;
      if (g->deadline_ <= now) {
        // The socket stays open (libpq owns it), so its number cannot be reused meanwhile:
        // the guard holds the connection alive until it disarms, under this lock.
        ::shutdown(g->fd_, SHUT_RDWR);
        g->fired_ = true;
      } else {
        next = std::min(next, g->deadline_);
      }
    }
    next_wake_ = next;
    if (next == steady::time_point::max())
      cv_.wait(lk);
    else
      cv_.wait_until(lk, next);
  }
}

}  // namespace headroom
