// The model's resources: a multi-server FCFS station (workers, the postmaster's serial
// fork) and a processor-sharing CPU with c cores. Both only track state and time
// integrals; the request-path model decides what happens next.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <vector>

namespace headroom {

// c servers, one FIFO queue. Holding times are decided by the caller (a worker is held for
// the whole request), so the station only grants and frees servers.
class fcfs_station {
 public:
  explicit fcfs_station(int servers = 0) : servers_(servers) {}
  bool unlimited() const { return servers_ <= 0; }
  int servers() const { return servers_; }
  int busy() const { return busy_; }
  std::size_t queued() const { return queue_.size(); }

  // True: a server is granted now. False: `id` waits in the queue.
  bool acquire(double now, std::uint32_t id) {
    if (unlimited()) return true;  // nothing to count or queue
    if (busy_ < servers_) {
      advance(now);
      ++busy_;
      return true;
    }
    queue_.push_back(id);
    return false;
  }
  // Frees a server; if someone waits, the server passes to them (returned in `next`).
  bool release(double now, std::uint32_t& next) {
    advance(now);
    if (!queue_.empty()) {
      next = queue_.front();
      queue_.pop_front();
      return true;
    }
    --busy_;
    return false;
  }
  // Server-seconds of busy time so far (for utilisation).
  double busy_integral(double now) {
    advance(now);
    return busy_seconds_;
  }

 private:
  void advance(double now) {
    busy_seconds_ += busy_ * (now - last_);
    last_ = now;
  }
  int servers_;
  int busy_ = 0;
  std::deque<std::uint32_t> queue_;
  double busy_seconds_ = 0, last_ = 0;
};

// Processor sharing on c cores: with n jobs each progresses at min(1, c/n) of a core.
// Virtual time V counts the service one job has received since the start (dV/dt = min(1, c/n)),
// so a job arriving at V0 with demand d leaves when V reaches V0 + d. Arrivals and departures
// cost O(log n) and no other job is touched: the only time that moves is the next completion.
class ps_cpu {
 public:
  explicit ps_cpu(double cores = 1) : cores_(cores) {}
  double cores() const { return cores_; }
  std::size_t jobs() const { return heap_.size(); }
  // When the next job finishes (+inf when idle).
  double next_completion() const { return next_; }

  void add(double now, double demand, std::uint32_t job) {
    advance(now);
    heap_.push_back({vtime_ + demand, job});
    std::push_heap(heap_.begin(), heap_.end(), later{});
    demand_seconds_ += demand;
    reschedule();
  }
  // Removes the job that finishes at next_completion() (call with now == next_completion()).
  std::uint32_t pop(double now) {
    advance(now);
    std::pop_heap(heap_.begin(), heap_.end(), later{});
    job j = heap_.back();
    heap_.pop_back();
    // Rounding may leave V a hair short of the finishing job's mark: snap to it.
    vtime_ = std::max(vtime_, j.finish);
    reschedule();
    return j.id;
  }
  // Core-seconds busy so far: the integral of min(n, c).
  double busy_integral(double now) {
    advance(now);
    return busy_seconds_;
  }
  // CPU seconds of work submitted so far.
  double demand_submitted() const { return demand_seconds_; }

 private:
  struct job {
    double finish;  // in virtual time
    std::uint32_t id;
  };
  // A function object, not a function pointer, so that the heap's comparisons inline.
  struct later {
    bool operator()(const job& a, const job& b) const { return a.finish > b.finish; }
  };
  double rate() const {
    double n = static_cast<double>(heap_.size());
    return n <= cores_ ? 1.0 : cores_ / n;
  }
  void advance(double now) {
    double dt = now - last_;
    if (dt > 0 && !heap_.empty()) {
      vtime_ += dt * rate();
      busy_seconds_ += dt * std::min(static_cast<double>(heap_.size()), cores_);
    }
    last_ = now;
  }
  void reschedule() {
    // Time to the next finish = virtual work left / rate; the rate is 1 unless the cores are
    // shared, so multiply by 1/rate = n/c and divide only then.
    if (heap_.empty()) {
      next_ = std::numeric_limits<double>::infinity();
      return;
    }
    const double n = static_cast<double>(heap_.size());
    const double left = std::max(0.0, heap_.front().finish - vtime_);
    next_ = last_ + (n <= cores_ ? left : left * (n / cores_));
  }
  double cores_;
  std::vector<job> heap_;
  double vtime_ = 0, last_ = 0;
  double next_ = std::numeric_limits<double>::infinity();
  double busy_seconds_ = 0, demand_seconds_ = 0;
};

}  // namespace headroom
