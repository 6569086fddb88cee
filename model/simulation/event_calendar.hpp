// The event calendar: pending events ordered by time, ties broken by insertion order so
// that equal-time events run first-scheduled-first and every run is reproducible.
// A d-ary heap; bench/model_calendar.cpp measured D = 2 against D = 4 (and
// std::priority_queue): see bench/README.md for why the model uses event_calendar (D = 4).
#pragma once

#include <cstdint>
#include <vector>

namespace headroom {

struct event {
  double time;
  std::uint64_t seq;   // insertion order: the tie-break
  std::uint32_t kind;  // what happens (the model's enum)
  std::uint32_t id;    // to whom (a request slot, a server, ...)
};

inline bool event_before(const event& a, const event& b) {
  return a.time < b.time || (a.time == b.time && a.seq < b.seq);
}

// Min-heap with D children per node. A wider node halves the tree's depth, so a pop does
// fewer, more cache-friendly levels at the cost of more comparisons per level.
template <unsigned D>
class d_ary_calendar {
 public:
  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  const event& top() const { return heap_.front(); }
  void reserve(std::size_t n) { heap_.reserve(n); }

  void push(double time, std::uint32_t kind, std::uint32_t id) {
    event e{time, next_seq_++, kind, id};
    std::size_t i = heap_.size();
    heap_.push_back(e);
    // Sift up with a hole: one write per level instead of a swap.
    while (i > 0) {
      std::size_t parent = (i - 1) / D;
      if (!event_before(e, heap_[parent])) break;
      heap_[i] = heap_[parent];
      i = parent;
    }
    heap_[i] = e;
  }

  event pop() {
    event out = heap_.front();
    event last = heap_.back();
    heap_.pop_back();
    const std::size_t n = heap_.size();
    if (n == 0) return out;
    std::size_t i = 0;
    for (;;) {
      std::size_t first = D * i + 1;
      if (first >= n) break;
      std::size_t best = first;
      std::size_t end = first + D < n ? first + D : n;
      for (std::size_t c = first + 1; c < end; ++c)
        if (event_before(heap_[c], heap_[best])) best = c;
      if (!event_before(heap_[best], last)) break;
      heap_[i] = heap_[best];
      i = best;
    }
    heap_[i] = last;
    return out;
  }

  void clear() {
    heap_.clear();
    next_seq_ = 0;
  }

 private:
  std::vector<event> heap_;
  std::uint64_t next_seq_ = 0;
};

using binary_heap_calendar = d_ary_calendar<2>;
using quaternary_heap_calendar = d_ary_calendar<4>;
// The one the model uses (the faster in bench/model_calendar.cpp).
using event_calendar = quaternary_heap_calendar;

}  // namespace headroom
