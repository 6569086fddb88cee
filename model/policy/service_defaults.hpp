// headroom-service's defaults in one place. The service's flags start from them and a scenario
// left at its defaults describes that service, so a prediction made without settings is a
// prediction of the service run without flags.
#pragma once

namespace headroom::service_defaults {

inline constexpr int workers = 64;           // threads for blocking database calls
inline constexpr int max_open = 0;           // Go's default: unlimited
inline constexpr int max_idle = 2;           // Go's defaultMaxIdleConns
inline constexpr double wait_timeout = 5.0;  // seconds a request waits for a connection (503 after)

}  // namespace headroom::service_defaults
