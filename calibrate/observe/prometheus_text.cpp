// Prometheus text format 0.0.4: a line-by-line parser that stops at the first line it cannot read
// (naming it), the queries on a snapshot, deltas between snapshots, and histogram quantiles.
#include "prometheus_text.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>
#include <utility>

namespace headroom::calibrate {
namespace {

std::string excerpt(std::string_view line) {
  constexpr std::size_t keep = 60;
  std::string out(line.substr(0, keep));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < ' ') c = '?';  // one line on a terminal, whatever came
  return line.size() > keep ? out + "..." : out;
}

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
bool is_blank(char c) { return c == ' ' || c == '\t'; }

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() > suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A float as Go's strconv.ParseFloat reads it (which is what Prometheus uses): an optional sign,
// digits with exponent, or Inf/Infinity/NaN in any case.
std::optional<double> parse_float(std::string_view s) {
  if (!s.empty() && s.front() == '+') {
    s.remove_prefix(1);
    if (!s.empty() && (s.front() == '+' || s.front() == '-')) return std::nullopt;
  }
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::string series_name(const std::string& name, const metric_labels& labels) {
  std::string out = name;
  if (labels.empty()) return out;
  out += '{';
  for (const auto& [k, v] : labels) out += (out.back() == '{' ? "" : ",") + k + "=\"" + v + '"';
  return out + '}';
}

bool includes(const metric_labels& labels, const metric_labels& selector) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

std::string format_number(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (s.back() == '.') s.pop_back();
  return s;
}

// Reads one line, left to right; every problem throws with the line named.
class line_reader {
 public:
  line_reader(std::string_view line, int number) : line_(line), number_(number) {}

  [[noreturn]] void fail(const std::string& problem) const {
    throw metrics_text_error(number_, problem, line_);
  }
  void skip_blanks() {
    while (pos_ < line_.size() && is_blank(line_[pos_])) ++pos_;
  }
  bool at_end() const { return pos_ >= line_.size(); }
  char peek() const { return at_end() ? '\0' : line_[pos_]; }
  bool take(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }

  // A metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), or a label name (no ':').
  std::string name(const std::string& what, bool label) {
    const std::size_t start = pos_;
    auto allowed = [&](char c) { return is_name_char(c) && !(label && c == ':'); };
    if (at_end() || !is_name_start(peek()) || !allowed(peek())) fail("expected " + what);
    while (pos_ < line_.size() && allowed(line_[pos_])) ++pos_;
    return std::string(line_.substr(start, pos_ - start));
  }
  // Up to the next blank or the end of the line.
  std::string_view word() {
    const std::size_t start = pos_;
    while (pos_ < line_.size() && !is_blank(line_[pos_])) ++pos_;
    return line_.substr(start, pos_ - start);
  }
  std::string_view rest() const { return line_.substr(std::min(pos_, line_.size())); }

  // "..." with \\, \" and \n escaped; the opening quote already taken.
  std::string quoted_label_value() {
    std::string out;
    while (true) {
      if (at_end()) fail("unterminated label value");
      const char c = line_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      const char e = peek();
      ++pos_;
      if (e == '\\' || e == '"')
        out += e;
      else if (e == 'n')
        out += '\n';
      else
        fail(std::string("invalid escape '\\") + e + "' in a label value");
    }
  }

  metric_labels labels() {
    metric_labels out;
    while (true) {
      skip_blanks();
      if (take('}')) return out;  // also after a trailing comma, which the format allows
      std::string key = name("a label name", true);
      skip_blanks();
      if (!take('=')) fail("expected '=' after label " + key);
      skip_blanks();
      if (!take('"')) fail("expected '\"' to open the value of label " + key);
      std::string value = quoted_label_value();
      if (!out.emplace(key, std::move(value)).second) fail("label " + key + " appears twice");
      skip_blanks();
      if (take('}')) return out;
      if (!take(',')) fail("expected ',' or '}' after label " + key);
    }
  }

 private:
  std::string_view line_;
  int number_;
  std::size_t pos_ = 0;
};

// HELP text escapes \\ and \n only.
std::string unescape_help(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '\\' || s[i + 1] == 'n')) {
      out += s[i + 1] == 'n' ? '\n' : '\\';
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::optional<metric_type> type_named(std::string_view w) {
  if (w == "counter") return metric_type::counter;
  if (w == "gauge") return metric_type::gauge;
  if (w == "histogram") return metric_type::histogram;
  if (w == "summary") return metric_type::summary;
  if (w == "untyped") return metric_type::untyped;
  return std::nullopt;
}

}  // namespace

metrics_text_error::metrics_text_error(int line_number, const std::string& problem,
                                       std::string_view text)
    : std::runtime_error("not Prometheus text: " +
                         (line_number > 0 ? "line " + std::to_string(line_number) + ": " : "") +
                         problem + (text.empty() ? "" : ": '" + excerpt(text) + "'")),
      line(line_number) {}

std::optional<double> histogram_quantile(double q, const histogram_series& h) {
  if (!(q >= 0 && q <= 1))
    throw std::invalid_argument("quantile must be in [0, 1], not " + std::to_string(q));
  if (h.buckets.empty() || !std::isinf(h.buckets.back().upper_bound))
    throw std::invalid_argument("a histogram needs a +Inf bucket for quantiles");
  // Counts read from a live process can be momentarily non-monotonic; Prometheus forces them up.
  std::vector<histogram_bucket> b = h.buckets;
  for (std::size_t i = 1; i < b.size(); ++i) b[i].count = std::max(b[i].count, b[i - 1].count);
  const double observations = b.back().count;
  if (observations <= 0) return std::nullopt;
  if (b.size() < 2) return std::nullopt;  // only +Inf: no finite bound to report
  const double rank = q * observations;
  // The first bucket whose cumulative count reaches the rank (the +Inf one if none before it).
  std::size_t i = 0;
  while (i + 1 < b.size() && !(rank == 0 ? b[i].count > 0 : b[i].count >= rank)) ++i;
  if (i == b.size() - 1) return b[b.size() - 2].upper_bound;
  if (i == 0 && b[0].upper_bound <= 0) return b[0].upper_bound;
  const double start = i == 0 ? 0.0 : b[i - 1].upper_bound;
  const double below = i == 0 ? 0.0 : b[i - 1].count;
  const double in_bucket = b[i].count - below;
  return start + (b[i].upper_bound - start) * ((rank - below) / in_bucket);
}

metrics_snapshot metrics_snapshot::parse(std::string_view text) {
  metrics_snapshot snap;
  std::set<std::pair<std::string, metric_labels>> seen;
  int number = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    line_reader r(line, number);
    r.skip_blanks();
    if (r.at_end()) continue;

    if (r.take('#')) {
      r.skip_blanks();
      const std::string_view keyword = r.word();
      if (keyword != "HELP" && keyword != "TYPE") continue;  // a comment
      r.skip_blanks();
      const std::string name = r.name("a metric name after # " + std::string(keyword), false);
      if (!r.at_end() && !is_blank(r.peek()))
        r.fail("invalid metric name after # " + std::string(keyword));
      r.skip_blanks();
      family& f = snap.families_[name];
      if (keyword == "HELP") {
        if (f.has_help) r.fail("a second HELP for " + name);
        f.help = unescape_help(r.rest());
        f.has_help = true;
        continue;
      }
      const std::string_view type_word = r.word();
      const auto type = type_named(type_word);
      if (!type) r.fail("unknown TYPE '" + std::string(type_word) + "'");
      r.skip_blanks();
      if (!r.at_end()) r.fail("unexpected text after the TYPE");
      if (f.has_type) r.fail("a second TYPE for " + name);
      for (const char* suffix : {"", "_bucket", "_sum", "_count"})
        if (snap.by_name_.count(name + suffix)) r.fail("TYPE for " + name + " after its samples");
      f.type = *type;
      f.has_type = true;
      continue;
    }

    if (!is_name_start(r.peek())) r.fail("expected a metric name or '#'");
    metric_sample s;
    s.name = r.name("a metric name", false);
    if (!r.at_end() && !is_blank(r.peek()) && r.peek() != '{')
      r.fail("invalid character in the metric name");
    r.skip_blanks();
    if (r.take('{')) s.labels = r.labels();
    r.skip_blanks();
    const std::string_view value_word = r.word();
    if (value_word.empty()) r.fail("no value after " + s.name);
    const auto value = parse_float(value_word);
    if (!value) r.fail("invalid value '" + excerpt(value_word) + "'");
    s.value = *value;
    r.skip_blanks();
    if (!r.at_end()) {
      const std::string_view ts = r.word();
      std::int64_t t = 0;
      const auto [p, ec] = std::from_chars(ts.data(), ts.data() + ts.size(), t);
      if (ec != std::errc() || p != ts.data() + ts.size())
        r.fail("invalid timestamp '" + excerpt(ts) + "'");
      s.timestamp_ms = t;
      r.skip_blanks();
      if (!r.at_end()) r.fail("unexpected text after the timestamp");
    }

    std::string suffix;
    if (const family* f = snap.family_of(s.name, &suffix)) {
      if (f->type == metric_type::histogram && suffix.empty())
        r.fail("a sample of histogram " + s.name + " needs the suffix _bucket, _sum or _count");
      if (f->type == metric_type::histogram && suffix == "_bucket" &&
          (!s.labels.count("le") || !parse_float(s.labels.at("le"))))
        r.fail("a histogram bucket needs a numeric le label");
      if (f->type == metric_type::summary && suffix.empty() &&
          (!s.labels.count("quantile") || !parse_float(s.labels.at("quantile"))))
        r.fail("a summary sample needs a numeric quantile label");
    }
    if (!seen.emplace(s.name, s.labels).second)
      r.fail("series " + series_name(s.name, s.labels) + " appears twice");
    snap.by_name_[s.name].push_back(snap.samples_.size());
    snap.samples_.push_back(std::move(s));
  }
  return snap;
}

const metrics_snapshot::family* metrics_snapshot::family_of(const std::string& sample_name,
                                                            std::string* suffix) const {
  if (auto it = families_.find(sample_name); it != families_.end()) {
    *suffix = "";
    return &it->second;
  }
  for (std::string_view sfx : {"_bucket", "_sum", "_count"}) {
    if (!ends_with(sample_name, sfx)) continue;
    auto it = families_.find(sample_name.substr(0, sample_name.size() - sfx.size()));
    if (it == families_.end()) continue;
    const metric_type t = it->second.type;
    if (t == metric_type::histogram || (t == metric_type::summary && sfx != "_bucket")) {
      *suffix = sfx;
      return &it->second;
    }
  }
  return nullptr;
}

std::optional<double> metrics_snapshot::value(const std::string& name,
                                              const metric_labels& labels) const {
  for (const metric_sample* s : series(name))
    if (s->labels == labels) return s->value;
  return std::nullopt;
}

double metrics_snapshot::sum(const std::string& name, const metric_labels& selector) const {
  double total = 0;
  for (const metric_sample* s : series(name))
    if (includes(s->labels, selector)) total += s->value;
  return total;
}

std::vector<const metric_sample*> metrics_snapshot::series(const std::string& name) const {
  std::vector<const metric_sample*> out;
  if (auto it = by_name_.find(name); it != by_name_.end())
    for (std::size_t i : it->second) out.push_back(&samples_[i]);
  return out;
}

std::optional<histogram_series> metrics_snapshot::histogram(const std::string& name,
                                                            const metric_labels& labels) const {
  histogram_series h;
  for (const metric_sample* s : series(name + "_bucket")) {
    metric_labels rest = s->labels;
    const auto le = rest.find("le");
    if (le == rest.end()) continue;
    const double bound = parse_float(le->second).value_or(std::nan(""));
    rest.erase(le);
    if (rest == labels) h.buckets.push_back({bound, s->value});
  }
  const auto count = value(name + "_count", labels);
  if (h.buckets.empty() && !count) return std::nullopt;
  std::sort(h.buckets.begin(), h.buckets.end(),
            [](const histogram_bucket& a, const histogram_bucket& b) {
              return a.upper_bound < b.upper_bound;
            });
  if (!h.buckets.empty() && !std::isinf(h.buckets.back().upper_bound))
    throw metrics_text_error(0, "histogram " + series_name(name, labels) + " has no +Inf bucket",
                             "");
  h.sum = value(name + "_sum", labels).value_or(0);
  h.count = count ? *count : h.buckets.back().count;
  return h;
}

metric_type metrics_snapshot::type(const std::string& family) const {
  auto it = families_.find(family);
  return it == families_.end() ? metric_type::untyped : it->second.type;
}

std::string metrics_snapshot::help(const std::string& family) const {
  auto it = families_.find(family);
  return it == families_.end() ? std::string() : it->second.help;
}

bool metrics_snapshot::is_cumulative(const metric_sample& s) const {
  std::string suffix;
  const family* f = family_of(s.name, &suffix);
  if (!f) return false;
  if (f->type == metric_type::counter) return true;
  return (f->type == metric_type::histogram || f->type == metric_type::summary) && !suffix.empty();
}

metrics_delta::metrics_delta(metrics_snapshot before, metrics_snapshot after)
    : before_(std::move(before)), after_(std::move(after)) {
  for (const metric_sample& s : after_.samples()) {
    // A histogram's _sum may legitimately fall (negative observations); its _count cannot.
    if (!after_.is_cumulative(s) || ends_with(s.name, "_sum")) continue;
    const auto was = before_.value(s.name, s.labels);
    if (was && s.value < *was) {
      reset_reason_ = series_name(s.name, s.labels) + " went down from " + format_number(*was) +
                      " to " + format_number(s.value) +
                      ": the process restarted between the two scrapes";
      return;
    }
  }
}

void metrics_delta::throw_if_restarted() const {
  if (restarted()) throw metrics_reset_error(reset_reason_);
}

std::optional<double> metrics_delta::counter(const std::string& name,
                                             const metric_labels& labels) const {
  throw_if_restarted();
  const auto now = after_.value(name, labels);
  if (!now) return std::nullopt;
  return *now - before_.value(name, labels).value_or(0);
}

double metrics_delta::counter_sum(const std::string& name, const metric_labels& selector) const {
  throw_if_restarted();
  return after_.sum(name, selector) - before_.sum(name, selector);
}

std::optional<histogram_series> metrics_delta::histogram(const std::string& name,
                                                         const metric_labels& labels) const {
  throw_if_restarted();
  auto now = after_.histogram(name, labels);
  if (!now) return std::nullopt;
  const auto was = before_.histogram(name, labels);
  if (!was) return now;
  if (was->buckets.size() != now->buckets.size())
    throw std::runtime_error("histogram " + series_name(name, labels) +
                             " changed its buckets between the two scrapes");
  for (std::size_t i = 0; i < now->buckets.size(); ++i) {
    if (was->buckets[i].upper_bound != now->buckets[i].upper_bound)
      throw std::runtime_error("histogram " + series_name(name, labels) +
                               " changed its buckets between the two scrapes");
    now->buckets[i].count -= was->buckets[i].count;
  }
  now->sum -= was->sum;
  now->count -= was->count;
  return now;
}

int metric_count(double value, const std::string& what) {
  if (!(value >= 0) || value > std::numeric_limits<int>::max() || value != std::floor(value))
    throw std::invalid_argument(what + " is " + format_number(value) +
                                ", not a whole number from 0 to " +
                                std::to_string(std::numeric_limits<int>::max()));
  return static_cast<int>(value);
}

}  // namespace headroom::calibrate
