// Go database/sql pool rules (sql.go: conn, putConn, putConnDBLocked,
// maybeOpenNewConnections, connectionCleaner) as pure decisions.
#include "pool_policy.hpp"

#include <algorithm>
#include <stdexcept>

namespace headroom {

waiter_order parse_waiter_order(const std::string& s) {
  if (s == "fifo") return waiter_order::fifo;
  if (s == "random") return waiter_order::random;
  throw std::invalid_argument("waiter order must be fifo or random, not '" + s + "'");
}

const char* to_string(waiter_order o) { return o == waiter_order::fifo ? "fifo" : "random"; }

go_version parse_go_version(const std::string& s) {
  int major = 0, minor = -1;
  std::size_t dot = s.find('.');
  try {
    std::size_t used = 0;
    if (dot != std::string::npos) {
      major = std::stoi(s.substr(0, dot), &used);
      if (used != dot) major = 0;
      minor = std::stoi(s.substr(dot + 1), &used);
      if (used != s.size() - dot - 1) minor = -1;
    }
  } catch (const std::exception&) {
    minor = -1;
  }
  if (major != 1 || minor < 10)
    throw std::invalid_argument("Go version must be 1.10 or later (profiles 1.10, 1.15, 1.18, 1.23), not '" +
                                s + "'");
  if (minor >= 23) return go_version::go1_23;
  if (minor >= 18) return go_version::go1_18;
  if (minor >= 15) return go_version::go1_15;
  return go_version::go1_10;
}

const char* to_string(go_version v) {
  switch (v) {
    case go_version::go1_10:
      return "1.10";
    case go_version::go1_15:
      return "1.15";
    case go_version::go1_18:
      return "1.18";
    case go_version::go1_23:
      return "1.23";
  }
  return "?";
}

waiter_order effective_waiter_order(const pool_config& cfg) {
  return cfg.order ? *cfg.order : waiter_order::random;
}

pool_policy::pool_policy(const pool_config& cfg) : cfg_(cfg), rng_(cfg.seed) {
  if (cfg_.max_open < 0) throw std::invalid_argument("max_open must be >= 0");
  if (cfg_.max_lifetime < 0) throw std::invalid_argument("max_lifetime must be >= 0");
  if (cfg_.max_idle_time < 0) throw std::invalid_argument("max_idle_time must be >= 0");
  // Negative means "keep none"; a pool can never keep more idle than it may open.
  max_idle_ = std::max(cfg_.max_idle, 0);
  if (cfg_.max_open > 0) max_idle_ = std::min(max_idle_, cfg_.max_open);
  stats_.max_open = cfg_.max_open;
}

pool_policy::acquire_decision pool_policy::acquire(double now, bool new_conn) {
  if (closed_) throw std::runtime_error("pool is closed");
  closed_list_.clear();
  // Reuse the most recently released connection: it is the warmest, and
  // letting the others age lets the idle-time limit retire them.
  while (!new_conn && !idle_.empty()) {
    conn_id c = idle_.back();
    idle_.pop_back();
    stats_.idle--;
    close_reason why;
    if (expired(conns_[c], now, why)) {
      free_conn(c, why);
      continue;
    }
    conns_[c].in_use = true;
    stats_.in_use++;
    return {acquire_decision::action::reuse, c, 0};
  }
  // At the limit: wait for a release (or a dial made on our behalf).
  if (cfg_.max_open > 0 && stats_.open >= cfg_.max_open) {
    waiter_id w = next_waiter_++;
    waiters_.push_back({w, now});
    stats_.waiting++;
    stats_.wait_count++;
    return {acquire_decision::action::wait, 0, w};
  }
  // Count it as open before dialing, so concurrent acquires respect max_open.
  stats_.open++;
  stats_.dials++;
  return {acquire_decision::action::dial, 0, 0};
}

conn_id pool_policy::dial_succeeded(double now) {
  conn_id c = new_conn(now);
  conns_[c].in_use = true;
  stats_.in_use++;
  return c;
}

int pool_policy::dial_failed() {
  stats_.open--;
  stats_.dial_failures++;
  // The slot we held may be what a waiter needs.
  return dials_for_waiters();
}

pool_policy::release_decision pool_policy::release(conn_id c, double now, bool broken) {
  closed_list_.clear();
  if (c >= conns_.size()) throw std::logic_error("release of an unknown connection");
  conn_info& ci = conns_[c];
  if (!ci.live || !ci.in_use) throw std::logic_error("release of a connection that is not in use");
  ci.in_use = false;
  stats_.in_use--;
  if (broken) {
    free_conn(c, close_reason::broken);
    return {release_decision::action::close, 0, close_reason::broken, dials_for_waiters(), c};
  }
  // Too old to go back: close it now rather than hand a stale one out.
  if (cfg_.max_lifetime > 0 && now - ci.created >= cfg_.max_lifetime) {
    free_conn(c, close_reason::max_lifetime);
    return {release_decision::action::close, 0, close_reason::max_lifetime, dials_for_waiters(), c};
  }
  return put(c, now);
}

pool_policy::release_decision pool_policy::waiter_dial_succeeded(double now) {
  closed_list_.clear();
  conn_id c = new_conn(now);
  release_decision d = put(c, now);
  d.conn = c;
  return d;
}

// Go's putConnDBLocked: over the limit -> close; a waiter -> hand off;
// room in the idle list -> keep; else close (counted as closed for max idle).
pool_policy::release_decision pool_policy::put(conn_id c, double now) {
  conn_info& ci = conns_[c];
  if (cfg_.max_open > 0 && stats_.open > cfg_.max_open) {
    free_conn(c, close_reason::over_max_open);
    return {release_decision::action::close, 0, close_reason::over_max_open, 0, c};
  }
  // A waiter gets it before the idle list: it has waited longest for work.
  if (!waiters_.empty()) {
    waiter w = pop_waiter();
    stats_.wait_seconds += now - w.since;
    ci.in_use = true;
    stats_.in_use++;
    return {release_decision::action::to_waiter, w.id, close_reason::max_idle, 0, c};
  }
  if (closed_) {
    free_conn(c, close_reason::shutdown);
    return {release_decision::action::close, 0, close_reason::shutdown, 0, c};
  }
  if (static_cast<int>(idle_.size()) < max_idle_) {
    ci.released = now;
    idle_.push_back(c);
    stats_.idle++;
    return {release_decision::action::to_idle, 0, close_reason::max_idle, 0, c};
  }
  // The idle list is full: with Go's default of 2 this is the common case
  // under load, and the next request will have to dial again.
  free_conn(c, close_reason::max_idle);
  return {release_decision::action::close, 0, close_reason::max_idle, 0, c};
}

bool pool_policy::cancel_wait(waiter_id w, double now, bool timed_out) {
  auto it =
      std::find_if(waiters_.begin(), waiters_.end(), [w](const waiter& x) { return x.id == w; });
  if (it == waiters_.end()) return false;
  stats_.wait_seconds += now - it->since;
  if (timed_out) stats_.wait_timeouts++;
  stats_.waiting--;
  waiters_.erase(it);
  return true;
}

int pool_policy::expire_idle(double now) {
  closed_list_.clear();
  std::vector<conn_id> keep;
  keep.reserve(idle_.size());
  for (conn_id c : idle_) {
    close_reason why;
    if (expired(conns_[c], now, why)) {
      stats_.idle--;
      free_conn(c, why);
    } else {
      keep.push_back(c);
    }
  }
  idle_.swap(keep);
  return dials_for_waiters();
}

double pool_policy::cleaner_interval() const {
  double d = 0;
  for (double limit : {cfg_.max_lifetime, cfg_.max_idle_time})
    if (limit > 0) d = d == 0 ? limit : std::min(d, limit);
  // Go never runs its cleaner more often than once a second.
  return d == 0 ? 0 : std::max(d, 1.0);
}

void pool_policy::close() {
  closed_list_.clear();
  closed_ = true;
  for (conn_id c : idle_) free_conn(c, close_reason::shutdown);
  stats_.idle = 0;
  idle_.clear();
}

std::vector<waiter_id> pool_policy::waiters() const {
  std::vector<waiter_id> out;
  for (const waiter& w : waiters_) out.push_back(w.id);
  return out;
}

conn_id pool_policy::new_conn(double now) {
  conn_id c;
  if (!free_slots_.empty()) {
    c = free_slots_.back();
    free_slots_.pop_back();
  } else {
    c = static_cast<conn_id>(conns_.size());
    conns_.emplace_back();
  }
  conns_[c] = conn_info{now, now, false, true};
  return c;
}

void pool_policy::free_conn(conn_id c, close_reason why) {
  conns_[c].live = false;
  conns_[c].in_use = false;
  free_slots_.push_back(c);
  closed_list_.push_back(c);
  stats_.open--;
  switch (why) {
    case close_reason::max_idle:
      stats_.closed_max_idle++;
      break;
    case close_reason::max_idle_time:
      stats_.closed_max_idle_time++;
      break;
    case close_reason::max_lifetime:
      stats_.closed_max_lifetime++;
      break;
    default:
      stats_.closed_other++;
      break;
  }
}

bool pool_policy::expired(const conn_info& ci, double now, close_reason& why) const {
  if (cfg_.max_lifetime > 0 && now - ci.created >= cfg_.max_lifetime) {
    why = close_reason::max_lifetime;
    return true;
  }
  if (cfg_.max_idle_time > 0 && now - ci.released >= cfg_.max_idle_time) {
    why = close_reason::max_idle_time;
    return true;
  }
  return false;
}

// Go's maybeOpenNewConnections: one dial per waiter, as far as max_open allows.
int pool_policy::dials_for_waiters() {
  if (closed_) return 0;
  int n = static_cast<int>(waiters_.size());
  if (cfg_.max_open > 0) n = std::min(n, cfg_.max_open - stats_.open);
  n = std::max(n, 0);
  stats_.open += n;
  stats_.dials += n;
  return n;
}

pool_policy::waiter pool_policy::pop_waiter() {
  waiter w;
  if (effective_waiter_order(cfg_) == waiter_order::fifo || waiters_.size() == 1) {
    w = waiters_.front();
    waiters_.pop_front();
  } else {
    // Go 1.11+ picks any waiter (map iteration order): the tail gets long.
    std::uniform_int_distribution<std::size_t> pick(0, waiters_.size() - 1);
    auto it = waiters_.begin() + static_cast<std::ptrdiff_t>(pick(rng_));
    w = *it;
    waiters_.erase(it);
  }
  stats_.waiting--;
  return w;
}

}  // namespace headroom
