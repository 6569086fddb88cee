// Go database/sql pool rules (sql.go: conn, putConn, putConnDBLocked, maybeOpenNewConnections,
// connectionOpener, connectionCleaner) as pure decisions, by Go version (GO_SQL_RULES.md).
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
    throw std::invalid_argument(
        "Go version must be 1.10 or later (profiles 1.10, 1.15, 1.18, 1.23), not '" + s + "'");
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

void validate(const pool_config& cfg) {
  if (cfg.max_open < 0) throw std::invalid_argument("max_open must be >= 0");
  if (cfg.max_lifetime < 0) throw std::invalid_argument("max_lifetime must be >= 0");
  if (cfg.max_idle_time < 0) throw std::invalid_argument("max_idle_time must be >= 0");
  // Go 1.10-1.14 have no SetConnMaxIdleTime: a limit the profile's Go could not set is an error,
  // not a rule silently dropped.
  if (cfg.max_idle_time > 0 && cfg.go == go_version::go1_10)
    throw std::invalid_argument(
        "max_idle_time needs Go 1.15 or later (SetConnMaxIdleTime); the Go 1.10 profile has none");
}

int effective_max_idle(const pool_config& cfg) {
  // Negative means "keep none"; a pool can never keep more idle than it may open.
  int n = std::max(cfg.max_idle, 0);
  if (cfg.max_open > 0) n = std::min(n, cfg.max_open);
  return n;
}

waiter_order effective_waiter_order(const pool_config& cfg) {
  return cfg.order ? *cfg.order : waiter_order::random;
}

pool_policy::pool_policy(const pool_config& cfg) : cfg_(cfg), rng_(cfg.seed) {
  validate(cfg_);
  max_idle_ = headroom::effective_max_idle(cfg_);
  stats_.max_open = cfg_.max_open;
  stats_.max_idle = max_idle_;
}

pool_effects pool_policy::set_max_open(int n) {
  cfg_.max_open = std::max(n, 0);
  stats_.max_open = cfg_.max_open;
  if (cfg_.max_open > 0 && max_idle_ > cfg_.max_open) return set_max_idle(cfg_.max_open);
  return {};
}

pool_effects pool_policy::set_max_idle(int n) {
  cfg_.max_idle = n > 0 ? n : -1;
  if (cfg_.max_open > 0 && cfg_.max_idle > cfg_.max_open) cfg_.max_idle = cfg_.max_open;
  max_idle_ = headroom::effective_max_idle(cfg_);
  stats_.max_idle = max_idle_;
  pool_effects e;
  while (static_cast<int>(idle_.size()) > max_idle_) {
    const conn_id c = idle_.back();
    idle_.pop_back();
    stats_.idle--;
    free_conn(c, close_reason::max_idle, e);
  }
  return e;
}

pool_policy::acquire_decision pool_policy::acquire(double now, bool new_conn) {
  if (closed_) throw std::runtime_error("pool is closed");
  acquire_decision d{acquire_decision::action::dial, 0, 0, {}};
  if (!new_conn && !idle_.empty()) {
    conn_id c;
    if (cfg_.go < go_version::go1_18) {
      // Up to Go 1.17, freeConn[0]: the connection returned longest ago (round robin).
      c = idle_.front();
      idle_.erase(idle_.begin());
    } else {
      // Go 1.18+ reuses the most recently returned, so the others idle long enough for the
      // idle-time limit to retire them.
      c = idle_.back();
      idle_.pop_back();
    }
    stats_.idle--;
    // Every version checks the lifetime of what it takes (idle time only the cleaner checks):
    // an expired connection is closed and this try fails as ErrBadConn, using up one of
    // bad_conn_retry's tries.
    if (past_lifetime(conns_[c], now)) {
      free_conn(c, close_reason::max_lifetime, d.effects);
      d.what = acquire_decision::action::bad_conn;
      d.conn = c;
      return d;
    }
    conns_[c].in_use = true;
    stats_.in_use++;
    d.what = acquire_decision::action::reuse;
    d.conn = c;
    return d;
  }
  // At the limit: wait for a release (or a dial the opener makes for waiters).
  if (cfg_.max_open > 0 && stats_.open >= cfg_.max_open) {
    waiter_id w = next_waiter_++;
    waiters_.push_back({w, now});
    stats_.waiting++;
    stats_.wait_count++;
    d.what = acquire_decision::action::wait;
    d.waiter = w;
    return d;
  }
  // Count it as open before dialing, so concurrent acquires respect max_open; the caller dials
  // on its own thread, in parallel with any other dial.
  stats_.open++;
  stats_.dials++;
  return d;
}

conn_id pool_policy::dial_succeeded(double now) {
  conn_id c = new_conn(now);
  conns_[c].in_use = true;
  stats_.in_use++;
  return c;
}

pool_effects pool_policy::dial_failed() {
  pool_effects e;
  stats_.open--;
  stats_.dial_failures++;
  // The slot we held may be what a waiter needs.
  open_for_waiters(e);
  return e;
}

pool_policy::release_decision pool_policy::release(conn_id c, double now, bool broken) {
  if (c >= conns_.size()) throw std::logic_error("release of an unknown connection");
  conn_info& ci = conns_[c];
  if (!ci.live || !ci.in_use) throw std::logic_error("release of a connection that is not in use");
  ci.in_use = false;
  stats_.in_use--;
  release_decision d{release_decision::action::close, 0, close_reason::broken, c, {}};
  if (broken) {
    free_conn(c, close_reason::broken, d.effects);
    return d;
  }
  // Go 1.15+ closes a connection that expired while in use rather than hand a stale one out;
  // up to 1.14 it goes back and whoever takes it next finds it expired.
  if (cfg_.go >= go_version::go1_15 && past_lifetime(ci, now)) {
    d.reason = close_reason::max_lifetime;
    free_conn(c, d.reason, d.effects);
    return d;
  }
  return put(c, now);
}

pool_policy::release_decision pool_policy::waiter_dial_succeeded(double now) {
  waiter_dial_running_ = false;
  release_decision d = put(new_conn(now), now);
  start_waiter_dial_if_free(d.effects);
  return d;
}

pool_policy::dial_failure_decision pool_policy::waiter_dial_failed(double now) {
  waiter_dial_running_ = false;
  dial_failure_decision d;
  stats_.open--;
  stats_.dial_failures++;
  // Go's openNewConnection: putConnDBLocked(nil, err) gives the error to a waiter.
  if (!waiters_.empty() && !(cfg_.max_open > 0 && stats_.open > cfg_.max_open)) {
    waiter w = pop_waiter();
    stats_.wait_seconds += now - w.since;
    d.failed_waiter = w.id;
  }
  open_for_waiters(d.effects);
  return d;
}

// Go's putConnDBLocked: over the limit -> close; a waiter -> hand off; room in the idle list ->
// keep; else close (counted as closed for max idle).
pool_policy::release_decision pool_policy::put(conn_id c, double now) {
  conn_info& ci = conns_[c];
  release_decision d{release_decision::action::close, 0, close_reason::over_max_open, c, {}};
  if (cfg_.max_open > 0 && stats_.open > cfg_.max_open) {
    free_conn(c, d.reason, d.effects);
    return d;
  }
  // A waiter gets it before the idle list: it has waited for work.
  if (!waiters_.empty()) {
    waiter w = pop_waiter();
    stats_.wait_seconds += now - w.since;
    d.waiter = w.id;
    // Go 1.10-1.14: the waiter checks what it was handed; an expired connection is closed and
    // its try fails as ErrBadConn (1.15+ never hands one over: release closed it).
    if (cfg_.go < go_version::go1_15 && past_lifetime(ci, now)) {
      d.what = release_decision::action::waiter_bad_conn;
      d.reason = close_reason::max_lifetime;
      free_conn(c, d.reason, d.effects);
      return d;
    }
    ci.in_use = true;
    stats_.in_use++;
    d.what = release_decision::action::to_waiter;
    return d;
  }
  if (closed_) {
    d.reason = close_reason::shutdown;
    free_conn(c, d.reason, d.effects);
    return d;
  }
  if (static_cast<int>(idle_.size()) < max_idle_) {
    ci.released = now;
    idle_.push_back(c);
    stats_.idle++;
    d.what = release_decision::action::to_idle;
    return d;
  }
  // The idle list is full: with Go's default of 2 this is the common case under load, and the
  // next request will have to dial again.
  d.reason = close_reason::max_idle;
  free_conn(c, d.reason, d.effects);
  return d;
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

pool_policy::cleaner_decision pool_policy::expire_idle(double now) {
  cleaner_decision d;
  // Up to Go 1.17 the cleaner deletes by moving the last idle connection into the gap (which
  // breaks the oldest-first order), lifetime first; 1.18 keeps the order, idle time first.
  const bool keep_order = cfg_.go >= go_version::go1_18;
  auto sweep = [&](close_reason why) {
    std::size_t i = 0;
    while (i < idle_.size()) {
      const conn_info& ci = conns_[idle_[i]];
      const bool expired =
          why == close_reason::max_lifetime ? past_lifetime(ci, now) : past_idle_time(ci, now);
      if (!expired) {
        ++i;
        continue;
      }
      const conn_id c = idle_[i];
      if (keep_order) {
        idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        idle_[i] = idle_.back();
        idle_.pop_back();
      }
      stats_.idle--;
      free_conn(c, why, d.effects);
    }
  };
  if (keep_order) {
    sweep(close_reason::max_idle_time);
    sweep(close_reason::max_lifetime);
  } else {
    sweep(close_reason::max_lifetime);
    sweep(close_reason::max_idle_time);
  }
  // Go 1.10-1.17 wake every interval; 1.18+ wake at the next expiry of an idle connection.
  double next = shortest_limit();
  if (next > 0 && cfg_.go >= go_version::go1_18) {
    for (conn_id c : idle_) {
      if (cfg_.max_idle_time > 0)
        next = std::min(next, conns_[c].released + cfg_.max_idle_time - now);
      if (cfg_.max_lifetime > 0) next = std::min(next, conns_[c].created + cfg_.max_lifetime - now);
    }
  }
  // Go never runs its cleaner more often than once a second.
  d.next_run = next > 0 ? std::max(next, 1.0) : 0;
  return d;
}

double pool_policy::cleaner_interval() const {
  const double d = shortest_limit();
  return d > 0 ? std::max(d, 1.0) : 0;
}

// Go 1.10-1.14 run the cleaner every max_lifetime (max_idle_time cannot be set); 1.15+ every
// min(max_lifetime, max_idle_time) of those set (1.15.0's bug that took the 0 of an unset one
// is not modelled). 0: nothing expires.
double pool_policy::shortest_limit() const {
  double d = 0;
  for (double limit : {cfg_.max_lifetime, cfg_.max_idle_time})
    if (limit > 0) d = d == 0 ? limit : std::min(d, limit);
  return d;
}

pool_policy::close_decision pool_policy::close(double now) {
  close_decision d;
  closed_ = true;
  for (conn_id c : idle_) free_conn(c, close_reason::shutdown, d.effects);
  stats_.idle = 0;
  idle_.clear();
  // Go closes every waiter's channel (errDBClosed), its wait still counted.
  for (const waiter& w : waiters_) {
    stats_.wait_seconds += now - w.since;
    d.failed_waiters.push_back(w.id);
  }
  waiters_.clear();
  stats_.waiting = 0;
  // The opener stops: dials promised but not started give their slots back.
  stats_.open -= stats_.dials_queued;
  stats_.dials_queued = 0;
  return d;
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

// Go's finalClose: the connection is gone, and its slot may let the opener dial for a waiter.
void pool_policy::free_conn(conn_id c, close_reason why, pool_effects& e) {
  conns_[c].live = false;
  conns_[c].in_use = false;
  free_slots_.push_back(c);
  e.close.push_back(c);
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
  open_for_waiters(e);
}

// Go's expired(): createdAt.Add(maxLifetime).Before(now).
bool pool_policy::past_lifetime(const conn_info& ci, double now) const {
  return cfg_.max_lifetime > 0 && ci.created + cfg_.max_lifetime < now;
}

bool pool_policy::past_idle_time(const conn_info& ci, double now) const {
  return cfg_.max_idle_time > 0 && ci.released + cfg_.max_idle_time < now;
}

// Go's maybeOpenNewConnections: one dial per waiter, as far as max_open allows, each counted
// as open at once. The opener makes them one at a time.
void pool_policy::open_for_waiters(pool_effects& e) {
  if (closed_) return;
  int n = static_cast<int>(waiters_.size());
  if (cfg_.max_open > 0) n = std::min(n, cfg_.max_open - stats_.open);
  n = std::max(n, 0);
  stats_.open += n;
  stats_.dials_queued += n;
  start_waiter_dial_if_free(e);
}

// Go's connectionOpener is one goroutine reading openerCh: dials for waiters are serial.
void pool_policy::start_waiter_dial_if_free(pool_effects& e) {
  if (closed_ || waiter_dial_running_ || stats_.dials_queued == 0) return;
  waiter_dial_running_ = true;
  stats_.dials_queued--;
  stats_.dials++;
  e.start_waiter_dial = true;
}

pool_policy::waiter pool_policy::pop_waiter() {
  waiter w;
  if (effective_waiter_order(cfg_) == waiter_order::fifo || waiters_.size() == 1) {
    w = waiters_.front();
    waiters_.pop_front();
  } else {
    // Go 1.9-1.22 take the first of a map's iteration (unspecified, modelled as random); 1.23+
    // a uniformly random one.
    std::uniform_int_distribution<std::size_t> pick(0, waiters_.size() - 1);
    auto it = waiters_.begin() + static_cast<std::ptrdiff_t>(pick(rng_));
    w = *it;
    waiters_.erase(it);
  }
  stats_.waiting--;
  return w;
}

}  // namespace headroom
