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
  // Exponential by the ziggurat (see exponential_ziggurat below): ~99 % of draws cost one
  // integer comparison and one multiply instead of a logarithm. Most of the model's
  // samples are exponential (Poisson arrivals, exponential demands).
  double exponential(double mean);
  // Standard normal by the ziggurat (normal_ziggurat below): Box-Muller's log, sqrt and cos
  // cost more than the rest of a lognormal demand's draw. No cached value: the stream's state
  // is only s_.
  double normal();

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

// Marsaglia & Tsang's ziggurat for Exp(1) (J. Stat. Software 5(8), 2000), 256 layers, with
// 53-bit uniforms: the layer index comes from the top 8 bits of one 64-bit draw and the
// position inside the layer from bits 3..55 (xoshiro256+'s weak bits are the lowest three).
// A draw inside the layer's rectangle is accepted at once; otherwise the wedge is tested
// against exp(-x) exactly, and layer 0's tail beyond r is r + Exp(1) (memorylessness).
struct exponential_ziggurat {
  static constexpr double r = 7.697117470131487;       // start of the tail
  static constexpr double v = 3.949659822581572e-3;    // area of each layer
  static constexpr double scale = 9007199254740992.0;  // 2^53
  std::uint64_t k[256];
  double w[256], f[256];
  exponential_ziggurat() {
    double de = r, te = r;
    const double q = v / std::exp(-de);
    k[0] = static_cast<std::uint64_t>((de / q) * scale);
    k[1] = 0;
    w[0] = q / scale;
    w[255] = de / scale;
    f[0] = 1.0;
    f[255] = std::exp(-de);
    for (int i = 254; i >= 1; --i) {
      de = -std::log(v / de + std::exp(-de));
      k[i + 1] = static_cast<std::uint64_t>((de / te) * scale);
      te = de;
      f[i] = std::exp(-de);
      w[i] = de / scale;
    }
  }
  static const exponential_ziggurat& tables() {
    static const exponential_ziggurat z;
    return z;
  }
};

inline double random_stream::exponential(double mean) {
  const exponential_ziggurat& z = exponential_ziggurat::tables();
  for (;;) {
    const std::uint64_t bits = next_u64();
    const unsigned i = static_cast<unsigned>(bits >> 56);
    const std::uint64_t j = (bits >> 3) & ((std::uint64_t{1} << 53) - 1);
    if (j < z.k[i]) return mean * (static_cast<double>(j) * z.w[i]);
    if (i == 0) return mean * (exponential_ziggurat::r - std::log(uniform_open()));
    const double x = static_cast<double>(j) * z.w[i];
    if (z.f[i] + uniform01() * (z.f[i - 1] - z.f[i]) < std::exp(-x)) return mean * x;
  }
}

// The same construction for the standard normal (Marsaglia & Tsang 2000), 128 layers: the
// top 7 bits pick the layer, the next bit the sign, bits 3..55 the position. Layer 0's tail
// beyond r is drawn by Marsaglia's exponential method.
struct normal_ziggurat {
  static constexpr double r = 3.442619855899;
  static constexpr double v = 9.91256303526217e-3;
  static constexpr double scale = 9007199254740992.0;  // 2^53
  std::uint64_t k[128];
  double w[128], f[128];
  normal_ziggurat() {
    double dn = r, tn = r;
    const double q = v / std::exp(-0.5 * dn * dn);
    k[0] = static_cast<std::uint64_t>((dn / q) * scale);
    k[1] = 0;
    w[0] = q / scale;
    w[127] = dn / scale;
    f[0] = 1.0;
    f[127] = std::exp(-0.5 * dn * dn);
    for (int i = 126; i >= 1; --i) {
      dn = std::sqrt(-2.0 * std::log(v / dn + std::exp(-0.5 * dn * dn)));
      k[i + 1] = static_cast<std::uint64_t>((dn / tn) * scale);
      tn = dn;
      f[i] = std::exp(-0.5 * dn * dn);
      w[i] = dn / scale;
    }
  }
  static const normal_ziggurat& tables() {
    static const normal_ziggurat z;
    return z;
  }
};

inline double random_stream::normal() {
  const normal_ziggurat& z = normal_ziggurat::tables();
  for (;;) {
    const std::uint64_t bits = next_u64();
    const unsigned i = static_cast<unsigned>(bits >> 57);
    const double sign = (bits >> 56) & 1 ? -1.0 : 1.0;
    const std::uint64_t j = (bits >> 3) & ((std::uint64_t{1} << 53) - 1);
    if (j < z.k[i]) return sign * (static_cast<double>(j) * z.w[i]);
    if (i == 0) {
      double x, y;
      do {
        x = -std::log(uniform_open()) / normal_ziggurat::r;
        y = -std::log(uniform_open());
      } while (y + y < x * x);
      return sign * (normal_ziggurat::r + x);
    }
    const double x = static_cast<double>(j) * z.w[i];
    if (z.f[i] + uniform01() * (z.f[i - 1] - z.f[i]) < std::exp(-0.5 * x * x)) return sign * x;
  }
}

}  // namespace headroom
