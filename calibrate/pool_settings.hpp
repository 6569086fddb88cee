// The pool settings one calibration measures, and the service's /pool endpoint that sets them
// without a restart (headroom-service --pool-admin: GET /pool, PUT /pool {max_open, max_idle}).
// `calibrate --auto` measures the service's own setting, then a warm pool that never dials:
// dials and their storms come from the first, the CPU crowding of high rates from the second.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace headroom::calibrate {

// A pool's two limits as Go's SetMaxOpenConns/SetMaxIdleConns take them (max_open 0 = no limit).
struct pool_limits {
  int max_open = 0;
  int max_idle = 2;
  bool operator==(const pool_limits& o) const {
    return max_open == o.max_open && max_idle == o.max_idle;
  }
};

// The limits Go applies for p: SetMaxIdleConns keeps max_idle <= max_open when max_open > 0
// (8/16 runs as 8/8), so two settings are the same when their applied limits are.
pool_limits as_applied(pool_limits p);

// The name of a setting's steps in a calibration file: "max_open 8, max_idle 8", the form the
// steps' labels have always had (read from /metrics).
std::string pool_label(const pool_limits& p);

// --pool-settings: a comma-separated list of "current" (the setting the service runs when the
// calibration starts), "warm" (warm_pool(cores)) and OPEN/IDLE pairs, e.g. "current,warm" or
// "0/2,8/8". nullopt stands for "current". Throws std::invalid_argument naming the flag and the
// bad entry; a setting listed twice (as Go applies it: 8/16 and 8/8 are one) is refused.
std::vector<std::optional<pool_limits>> parse_pool_settings(const std::string& text, int cores);

// The warm pool --auto adds: max_open = max_idle = 2 x cores, enough connections for every
// core's queries that a pool kept full never dials.
pool_limits warm_pool(int cores);

// http://host:port/pool for a target URL of the same service.
std::string pool_admin_url(const std::string& target_url);

// GET /pool: the limits the pool applies now, or nullopt when the service has no /pool (a 404:
// it runs without --pool-admin). Throws std::runtime_error naming the URL for anything else
// (refused, another status, a body that is not {"max_open": N, "max_idle": N}).
std::optional<pool_limits> read_pool_limits(const std::string& url, double timeout = 5);

// PUT /pool with both limits; returns the limits the service applied (the idle limit clamped to
// max_open as Go clamps it). Throws std::runtime_error naming the URL and the service's answer.
pool_limits apply_pool_limits(const std::string& url, const pool_limits& p, double timeout = 5);

}  // namespace headroom::calibrate
