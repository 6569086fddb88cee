// Event calendar benchmark: the classic "hold" model (pop the earliest event, push one a random
// exponential time later) at several calendar sizes, for the binary heap, the 4-ary heap and
// std::priority_queue. The model uses the faster d-ary heap (event_calendar.hpp).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <queue>
#include <vector>

#include "event_calendar.hpp"
#include "random_stream.hpp"

using namespace headroom;

namespace {
struct later {
  bool operator()(const event& a, const event& b) const { return event_before(b, a); }
};
struct std_calendar {
  std::priority_queue<event, std::vector<event>, later> q;
  std::uint64_t seq = 0;
  void push(double t, std::uint32_t k, std::uint32_t id) { q.push(event{t, seq++, k, id}); }
  event pop() {
    event e = q.top();
    q.pop();
    return e;
  }
};

template <class C>
double holds_per_second(std::size_t size, std::uint64_t holds) {
  C cal;
  random_stream rng(1, 0, 0);
  for (std::size_t i = 0; i < size; ++i)
    cal.push(rng.exponential(1.0), 0, static_cast<std::uint32_t>(i));
  auto t0 = std::chrono::steady_clock::now();
  double sink = 0;
  for (std::uint64_t i = 0; i < holds; ++i) {
    event e = cal.pop();
    sink += e.time;
    cal.push(e.time + rng.exponential(1.0), 0, e.id);
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (sink < 0) std::printf("impossible\n");
  return static_cast<double>(holds) / s;
}
}  // namespace

int main() {
  // The machine is shared and noisy: the three run in turn, five rounds, best round kept.
  std::printf("hold operations (pop + push) per second, millions; best of 5 alternating rounds\n");
  std::printf("%10s %14s %14s %14s\n", "size", "std::pq", "binary heap", "4-ary heap");
  for (std::size_t size : {16, 128, 1024, 16384, 262144}) {
    const std::uint64_t holds = 2'000'000;
    double a = 0, b = 0, c = 0;
    for (int round = 0; round < 5; ++round) {
      a = std::max(a, holds_per_second<std_calendar>(size, holds));
      b = std::max(b, holds_per_second<binary_heap_calendar>(size, holds));
      c = std::max(c, holds_per_second<quaternary_heap_calendar>(size, holds));
    }
    std::printf("%10zu %14.1f %14.1f %14.1f\n", size, a / 1e6, b / 1e6, c / 1e6);
  }
}
