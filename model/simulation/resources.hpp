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
//
// This runs on almost every event, so it avoids what it can: the rate c/n and its inverse n/c
// come from a table filled once (the same divisions, so the same doubles), the job count is
// kept as a double (no integer conversion per use), and the heap is libstdc++'s push_heap /
// pop_heap written out with unsigned indices (the same moves in the same order, so jobs that
// finish at the same virtual time leave in the same order as before).
class ps_cpu {
 public:
  explicit ps_cpu(double cores = 1) : cores_(cores) {
    for (std::size_t n = 0; n < table_size; ++n) {
      const double x = static_cast<double>(n);
      rate_[n] = x <= cores_ ? 1.0 : cores_ / x;
      stretch_[n] = x <= cores_ ? 1.0 : x / cores_;
      busy_[n] = std::min(x, cores_);
    }
  }
  double cores() const { return cores_; }
  std::size_t jobs() const { return heap_.size(); }
  // When the next job finishes (+inf when idle).
  double next_completion() const { return next_; }

  // Always inlined: it runs on nearly every event, and since the model has a CPU per host GCC
  // no longer inlines it by itself (measured: ~2 % more instructions per request).
  [[gnu::always_inline]] void add(double now, double demand, std::uint32_t job_id) {
    advance(now);
    heap_.push_back({vtime_ + demand, job_id});
    sift_up(heap_.size() - 1, heap_.back());
    demand_seconds_ += demand;
    reschedule();
  }
  // Removes the job that finishes at next_completion() (call with now == next_completion()).
  std::uint32_t pop(double now) {
    advance(now);
    const job j = heap_.front();
    const job last = heap_.back();
    heap_.pop_back();
    if (!heap_.empty()) sift_down_from_top(last);
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
  // Job-seconds so far: the integral of the number of jobs (running or waiting: runnable).
  double jobs_integral(double now) {
    advance(now);
    return jobs_seconds_;
  }

 private:
  struct job {
    double finish;  // in virtual time
    std::uint32_t id;
  };
  static constexpr std::size_t table_size = 64;

  // libstdc++'s __push_heap with `later` (a.finish > b.finish) as the comparison.
  void sift_up(std::size_t hole, job value) {
    job* h = heap_.data();
    while (hole > 0) {
      const std::size_t parent = (hole - 1) / 2;
      if (!(h[parent].finish > value.finish)) break;
      h[hole] = h[parent];
      hole = parent;
    }
    h[hole] = value;
  }
  // libstdc++'s __pop_heap/__adjust_heap once the top has been taken: the hole walks down to a
  // leaf along the smaller children, then `value` (the old last job) sifts up from there.
  void sift_down_from_top(job value) {
    job* h = heap_.data();
    const std::size_t len = heap_.size();
    std::size_t hole = 0, child = 0;
    while (child < (len - 1) / 2) {
      child = 2 * (child + 1);
      // Which child is random: a subtraction, not a branch the CPU would mispredict.
      child -= static_cast<std::size_t>(h[child].finish > h[child - 1].finish);
      h[hole] = h[child];
      hole = child;
    }
    // A last node with one child (len even): step into it. Selected without a branch, as the
    // parity of the job count is random too (otherwise hole copies onto itself).
    const std::size_t only = 2 * hole + 2 == len ? len - 1 : hole;
    h[hole] = h[only];
    hole = only;
    sift_up(hole, value);
  }

  void set_count() {
    const std::size_t n = heap_.size();
    count_now_ = static_cast<double>(n);
    if (n < table_size) {
      rate_now_ = rate_[n];
      stretch_now_ = stretch_[n];
      busy_now_ = busy_[n];
    } else {
      const double x = static_cast<double>(n);
      rate_now_ = cores_ / x;
      stretch_now_ = x / cores_;
      busy_now_ = cores_;
    }
  }
  void advance(double now) {
    double dt = now - last_;
    if (dt > 0 && !heap_.empty()) {
      vtime_ += dt * rate_now_;
      busy_seconds_ += dt * busy_now_;
      jobs_seconds_ += dt * count_now_;
    }
    last_ = now;
  }
  void reschedule() {
    set_count();
    // Time to the next finish = virtual work left / rate = left * n/c (n/c is exactly 1 while
    // the cores are not shared, and x * 1.0 == x).
    if (heap_.empty()) {
      next_ = std::numeric_limits<double>::infinity();
      return;
    }
    const double left = std::max(0.0, heap_.front().finish - vtime_);
    next_ = last_ + left * stretch_now_;
  }
  double cores_;
  std::vector<job> heap_;
  double vtime_ = 0, last_ = 0;
  double next_ = std::numeric_limits<double>::infinity();
  double busy_seconds_ = 0, demand_seconds_ = 0, jobs_seconds_ = 0;
  double rate_now_ = 1, stretch_now_ = 1, busy_now_ = 0, count_now_ = 0;
  double rate_[table_size], stretch_[table_size], busy_[table_size];
};

}  // namespace headroom
