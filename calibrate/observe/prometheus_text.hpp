// Reads the Prometheus text exposition format (0.0.4) into a snapshot that can be queried by
// series, and subtracts two snapshots (counters and histograms grow; gauges are read as they are).
//
// Format: https://prometheus.io/docs/instrumenting/exposition_formats/ . One sample a line:
//   name{label="value",...} value [timestamp_ms]
// label values escape \\ \" \n; values are floats or NaN, +Inf, -Inf; `# HELP name text` and
// `# TYPE name counter|gauge|histogram|summary|untyped` describe a family and must precede its
// samples; other `#` lines are comments. A histogram `h` is the samples h_bucket{le="..."}
// (cumulative counts), h_sum and h_count; a summary `s` is s{quantile="..."}, s_sum and s_count.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace headroom::calibrate {

// Text that is not Prometheus text. what(): "not Prometheus text: line N: <problem>: '<line>'".
struct metrics_text_error : std::runtime_error {
  metrics_text_error(int line, const std::string& problem, std::string_view text);
  int line;  // 1-based; 0 for a problem of the whole text (such as a histogram without +Inf)
};

// A counter went down between two snapshots: the process restarted (or its counters were reset),
// so no difference between them means anything.
struct metrics_reset_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using metric_labels = std::map<std::string, std::string>;  // sorted: one spelling per series

enum class metric_type { untyped, counter, gauge, histogram, summary };

struct metric_sample {
  std::string name;  // as written: h_bucket, h_sum, h_count for a histogram h
  metric_labels labels;
  double value;
  std::optional<std::int64_t> timestamp_ms;
};

struct histogram_bucket {
  double upper_bound;  // the `le` label; the last is +Inf
  double count;        // cumulative: observations <= upper_bound
};

struct histogram_series {
  std::vector<histogram_bucket> buckets;  // ascending by upper_bound, ending with +Inf
  double sum = 0;
  double count = 0;
};

// The q-quantile (q in [0, 1]) estimated from cumulative buckets as Prometheus's
// histogram_quantile does: find the bucket holding rank q * count and interpolate linearly inside
// it (the first bucket starts at 0 unless its bound is <= 0); a rank in the +Inf bucket gives the
// highest finite bound. Nothing when the histogram holds no observation. One liberty: q = 0 gives
// the lower edge of the first non-empty bucket (Prometheus divides 0 by 0 there when the first
// bucket is empty). Throws std::invalid_argument for q outside [0, 1] or no +Inf bucket.
std::optional<double> histogram_quantile(double q, const histogram_series& h);

// A metric's value as a count (connections, instances, cores): whole and from 0 to INT_MAX, else
// std::invalid_argument naming `what` (casting 1e10 or NaN to int is undefined behaviour, and a
// fraction would be truncated without a word).
int metric_count(double value, const std::string& what);

class metrics_snapshot {
 public:
  // Throws metrics_text_error naming the first line that is not Prometheus text.
  static metrics_snapshot parse(std::string_view text);

  const std::vector<metric_sample>& samples() const { return samples_; }

  // The value of the series with exactly these labels, or nothing.
  std::optional<double> value(const std::string& name, const metric_labels& labels = {}) const;
  // The sum over every series of `name` whose labels include `selector` (0 when none does), e.g.
  // sum("http_request_seconds_count", {{"code", "200"}}) over all paths.
  double sum(const std::string& name, const metric_labels& selector = {}) const;
  // Every series of `name`, in the order of the text.
  std::vector<const metric_sample*> series(const std::string& name) const;

  // The histogram `name` (without _bucket) with exactly these labels (without `le`), or nothing.
  // Throws metrics_text_error if it has buckets but no +Inf bucket.
  std::optional<histogram_series> histogram(const std::string& name,
                                            const metric_labels& labels = {}) const;

  // The family's declared TYPE (untyped when none) and HELP ("" when none).
  metric_type type(const std::string& family) const;
  std::string help(const std::string& family) const;

  // True for samples that only grow while the process lives: counters, and the _bucket and
  // _count of histograms and summaries (and their _sum, which grows unless observations are
  // negative; it is subtracted but not checked for resets).
  bool is_cumulative(const metric_sample& s) const;

 private:
  struct family {
    metric_type type = metric_type::untyped;
    std::string help;
    bool has_type = false;
    bool has_help = false;
  };
  // The family a sample belongs to: itself, or a histogram/summary it is a part of.
  const family* family_of(const std::string& sample_name, std::string* suffix) const;

  std::vector<metric_sample> samples_;
  std::map<std::string, family> families_;
  std::map<std::string, std::vector<std::size_t>> by_name_;  // indices into samples_
};

// What changed between two scrapes of one process: counters and histograms are after - before
// (a series absent before counts from 0, since client libraries create labelled series on first
// use); gauges are read from `after`.
class metrics_delta {
 public:
  metrics_delta(metrics_snapshot before, metrics_snapshot after);

  // A cumulative series went down: the process restarted between the scrapes. Every counter
  // query below then throws metrics_reset_error with reset_reason(), because even counters that
  // grew no longer measure the interval.
  bool restarted() const { return !reset_reason_.empty(); }
  const std::string& reset_reason() const { return reset_reason_; }

  // after - before for a counter series; nothing if absent after.
  std::optional<double> counter(const std::string& name, const metric_labels& labels = {}) const;
  // after - before summed over the series whose labels include `selector`.
  double counter_sum(const std::string& name, const metric_labels& selector = {}) const;
  // Bucket by bucket after - before; nothing if absent after. Throws std::runtime_error if the
  // bucket bounds changed.
  std::optional<histogram_series> histogram(const std::string& name,
                                            const metric_labels& labels = {}) const;
  // The gauge's value after, or nothing.
  std::optional<double> gauge(const std::string& name, const metric_labels& labels = {}) const {
    return after_.value(name, labels);
  }

  const metrics_snapshot& before() const { return before_; }
  const metrics_snapshot& after() const { return after_; }

 private:
  void throw_if_restarted() const;

  metrics_snapshot before_;
  metrics_snapshot after_;
  std::string reset_reason_;
};

}  // namespace headroom::calibrate
