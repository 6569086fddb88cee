// Fuzz target: the body of POST / ({"Age": N}) through the service's own parse_age.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "people_handler.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  try {
    const std::int32_t age = headroom::parse_age(body);
    // The query's parameter is PostgreSQL's integer, and an age is never negative.
    if (age < 0) std::abort();
  } catch (const headroom::bad_request& e) {
    // A client mistake must be a 4xx with a message, never a 5xx or an empty error.
    if (e.status < 400 || e.status > 499 || std::string_view(e.what()).empty()) std::abort();
  }
  return 0;
}
