// Reproducible random streams: one independent stream per (seed, replication, purpose),
// so replications are independent and changing one resource leaves the others' draws alone.
#pragma once

#include <cmath>
#include <cstdint>

namespace headroom {

// xoshiro256+ (Blackman & Vigna): fast, 2^256 period, good enough in the top 53 bits we use
// for doubles. Seeded through splitmix64 from a hash of the three identifiers, which is the
// seeding its authors recommend: streams from nearby seeds are uncorrelated.
class random_stream {
 public:
  random_stream(std::uint64_t seed, std::uint64_t replication, std::uint64_t purpose) {
    std::uint64_t x = seed;
    x = mix(x ^ mix(replication + 0x9e3779b97f4a7c15ULL));
    x = mix(x ^ mix(purpose + 0xbf58476d1ce4e5b9ULL));
    for (auto& w : s_) w = splitmix(x);
  }

  std::uint64_t next_u64() {
    const std::uint64_t result = s_[0] + s_[3];
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // [0, 1): the top 53 bits.
  double uniform01() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  // (0, 1]: safe to take the logarithm of.
  double uniform_open() { return 1.0 - uniform01(); }
  double exponential(double mean) { return -mean * std::log(uniform_open()); }
  // Box-Muller, one value per call: no cached second value, so a stream's state is only s_.
  double normal() {
    double u1 = uniform_open(), u2 = uniform01();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t mix(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  static std::uint64_t splitmix(std::uint64_t& x) {
    x += 0x9e3779b97f4a7c15ULL;
    return mix(x);
  }
  std::uint64_t s_[4];
};

}  // namespace headroom
