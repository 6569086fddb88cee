// The report's charts (svg_chart.hpp). Data coordinates map to pixels once, in px and py; all
// drawing goes through them, so a log axis is one branch in py.
#include "svg_chart.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <sstream>

namespace headroom::report {

namespace {

std::string num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", x);
  return buf;
}

// A tick label: at most three significant digits, no trailing zeros, never an exponent
// (people read "1000 ms", not "1e+03").
std::string tick_text(double v) {
  char buf[32];
  if (std::abs(v) >= 1000)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// Round steps (1, 2 or 5 x 10^k) giving about `target` ticks between lo and hi.
std::vector<double> linear_ticks(double lo, double hi, int target) {
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> out;
  for (double v = std::ceil(lo / step) * step; v <= hi * (1 + 1e-9); v += step)
    out.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

// 1, 2, 5 in every decade; only the powers of ten when that would crowd the axis.
std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> out;
  const int first = static_cast<int>(std::floor(std::log10(lo)));
  const int last = static_cast<int>(std::ceil(std::log10(hi)));
  const bool crowded = last - first > 4;
  for (int d = first; d <= last; ++d)
    for (double m : {1.0, 2.0, 5.0}) {
      if (crowded && m != 1) continue;
      const double v = m * std::pow(10, d);
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push_back(v);
    }
  return out;
}

// Clock ticks: the smallest round interval (1 s to 1 h) giving at most about `target` ticks, at
// multiples of it since midnight UTC, so they fall on times a person would name.
std::vector<double> clock_ticks(double lo, double hi, int target) {
  double step = 3600;
  for (double s : {1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600})
    if ((hi - lo) / s <= target) {
      step = s;
      break;
    }
  std::vector<double> out;
  for (double v = std::ceil(lo / step) * step; v <= hi; v += step) out.push_back(v);
  return out;
}

// "08:05" when every tick is on a whole minute, else "08:05:30" (UTC, as the page says).
std::string clock_text(double unix_seconds, bool with_seconds) {
  const std::time_t t = static_cast<std::time_t>(std::floor(unix_seconds));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, with_seconds ? "%H:%M:%S" : "%H:%M", &tm);
  return buf;
}

}  // namespace

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

svg_chart::svg_chart(axis x, axis y, int width, int height)
    : x_(std::move(x)), y_(std::move(y)), width_(width), height_(height) {
  if (!x_.categories.empty()) {
    x_.min = -0.6;
    x_.max = static_cast<double>(x_.categories.size()) - 0.4;
    // Long category names are drawn slanted and need room below the axis.
    bottom_ = 90;
  }
  if (y_.log && !(y_.min > 0)) y_.min = 1e-6;
  if (!(y_.max > y_.min)) y_.max = y_.log ? y_.min * 10 : y_.min + 1;
  if (!(x_.max > x_.min)) x_.max = x_.min + 1;
}

double svg_chart::px(double x) const {
  const double f = (x - x_.min) / (x_.max - x_.min);
  return left_ + f * (width_ - left_ - right_);
}

double svg_chart::py(double y) const {
  double f = 0;
  if (y_.log)
    f = y > 0 ? (std::log10(y) - std::log10(y_.min)) / (std::log10(y_.max) - std::log10(y_.min))
              : -1;
  else
    f = (y - y_.min) / (y_.max - y_.min);
  // Off the scale (a run that fell over is +inf) stays on the chart's edge.
  if (std::isnan(f)) f = 0;
  f = std::clamp(f, 0.0, 1.0);
  return height_ - bottom_ - f * (height_ - top_ - bottom_);
}

void svg_chart::line(const std::vector<double>& x, const std::vector<double>& y,
                     const std::string& color, const std::string& label, bool dashed) {
  std::string d;
  bool pen_down = false;
  for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
    if (!std::isfinite(y[i])) {
      pen_down = false;
      continue;
    }
    d += (pen_down ? " L" : " M") + num(px(x[i])) + "," + num(py(y[i]));
    pen_down = true;
  }
  if (!d.empty()) {
    data_drawn_ = true;
    body_ += "<path d=\"" + d + "\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"2\"" +
             (dashed ? " stroke-dasharray=\"6 4\"" : "") + "/>\n";
  }
  legend_.push_back({label, color, dashed ? legend_item::dashed : legend_item::line});
}

void svg_chart::points(const std::vector<double>& x, const std::vector<double>& y,
                       const std::string& color, const std::string& label, bool hollow) {
  for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
    if (std::isnan(y[i])) continue;
    body_ += "<circle cx=\"" + num(px(x[i])) + "\" cy=\"" + num(py(y[i])) + "\" r=\"4\" fill=\"" +
             (hollow ? std::string("white") : color) + "\" stroke=\"" + color +
             "\" stroke-width=\"1.5\"><title>" + tick_text(x[i]) + ": " +
             tick_text(y[i] * y_.scale) + "</title></circle>\n";
  }
  legend_.push_back({label, color, legend_item::point});
}

void svg_chart::band(const std::vector<double>& x, const std::vector<double>& low,
                     const std::vector<double>& high, const std::string& color,
                     const std::string& label) {
  std::string d;
  const std::size_t n = std::min({x.size(), low.size(), high.size()});
  for (std::size_t i = 0; i < n; ++i)
    d += (i ? " L" : "M") + num(px(x[i])) + "," + num(py(high[i]));
  for (std::size_t i = n; i-- > 0;) d += " L" + num(px(x[i])) + "," + num(py(low[i]));
  if (n > 0)
    body_ +=
        "<path d=\"" + d + " Z\" fill=\"" + color + "\" fill-opacity=\"0.18\" stroke=\"none\"/>\n";
  legend_.push_back({label, color, legend_item::shade});
}

void svg_chart::hline(double y, const std::string& color, const std::string& label) {
  const std::string yy = num(py(y));
  body_ += "<line x1=\"" + num(left_) + "\" x2=\"" + num(width_ - right_) + "\" y1=\"" + yy +
           "\" y2=\"" + yy + "\" stroke=\"" + color +
           "\" stroke-width=\"1.5\" stroke-dasharray=\"8 4\"/>\n";
  body_ += "<text x=\"" + num(width_ - right_ - 4) + "\" y=\"" + num(py(y) - 5) +
           "\" text-anchor=\"end\" fill=\"" + color + "\">" + xml_escape(label) + "</text>\n";
}

void svg_chart::vline(double x, const std::string& color, const std::string& label) {
  const std::string xx = num(px(x));
  body_ += "<line x1=\"" + xx + "\" x2=\"" + xx + "\" y1=\"" + num(top_) + "\" y2=\"" +
           num(height_ - bottom_) + "\" stroke=\"" + color +
           "\" stroke-width=\"1.5\" stroke-dasharray=\"3 3\"/>\n";
  // The label sits left of the line when the line is in the chart's right half.
  const bool right_half = px(x) > 0.5 * width_;
  body_ += "<text x=\"" + num(px(x) + (right_half ? -4 : 4)) + "\" y=\"" + num(top_ + 14) +
           "\" text-anchor=\"" + (right_half ? "end" : "start") + "\" fill=\"" + color + "\">" +
           xml_escape(label) + "</text>\n";
}

void svg_chart::bar(double x, double y0, double y1, double width, const std::string& color,
                    const std::string& tooltip) {
  const double x0 = px(x - width / 2), x1 = px(x + width / 2);
  const double top = std::min(py(y0), py(y1)), bottom = std::max(py(y0), py(y1));
  body_ += "<rect x=\"" + num(x0) + "\" y=\"" + num(top) + "\" width=\"" + num(x1 - x0) +
           "\" height=\"" + num(bottom - top) + "\" fill=\"" + color + "\"><title>" +
           xml_escape(tooltip) + "</title></rect>\n";
}

void svg_chart::whisker(double x, double low, double mid, double high, const std::string& color) {
  const std::string xx = num(px(x));
  body_ += "<line x1=\"" + xx + "\" x2=\"" + xx + "\" y1=\"" + num(py(low)) + "\" y2=\"" +
           num(py(high)) + "\" stroke=\"" + color +
           "\" stroke-width=\"6\" stroke-opacity=\"0.35\"/>\n";
  if (std::isfinite(mid))
    body_ += "<line x1=\"" + num(px(x) - 8) + "\" x2=\"" + num(px(x) + 8) + "\" y1=\"" +
             num(py(mid)) + "\" y2=\"" + num(py(mid)) + "\" stroke=\"" + color +
             "\" stroke-width=\"2\"/>\n";
}

void svg_chart::legend_box(const std::string& label, const std::string& color) {
  legend_.push_back({label, color, legend_item::box});
}

void svg_chart::note(const std::string& text) { notes_.push_back(text); }

std::string svg_chart::axes() const {
  std::ostringstream os;
  const double x0 = left_, x1 = width_ - right_, y0 = height_ - bottom_, y1 = top_;
  os << "<rect x=\"" << num(x0) << "\" y=\"" << num(y1) << "\" width=\"" << num(x1 - x0)
     << "\" height=\"" << num(y0 - y1) << "\" fill=\"none\" stroke=\"#888\"/>\n";
  // y ticks and grid
  const auto yt = y_.log ? log_ticks(y_.min, y_.max) : linear_ticks(y_.min, y_.max, 6);
  for (double v : yt) {
    const std::string y = num(py(v));
    os << "<line x1=\"" << num(x0) << "\" x2=\"" << num(x1) << "\" y1=\"" << y << "\" y2=\"" << y
       << "\" stroke=\"#e4e4e4\"/>\n";
    os << "<text x=\"" << num(x0 - 6) << "\" y=\"" << num(py(v) + 4) << "\" text-anchor=\"end\">"
       << tick_text(v * y_.scale) << "</text>\n";
  }
  // x ticks: categories, or numbers
  if (!x_.categories.empty()) {
    for (std::size_t i = 0; i < x_.categories.size(); ++i) {
      const double x = px(static_cast<double>(i));
      os << "<text transform=\"translate(" << num(x + 4) << "," << num(y0 + 14)
         << ") rotate(-30)\" text-anchor=\"end\">" << xml_escape(x_.categories[i]) << "</text>\n";
    }
  } else if (x_.clock) {
    const auto ticks = clock_ticks(x_.min, x_.max, width_ / 110);
    const bool seconds =
        std::any_of(ticks.begin(), ticks.end(), [](double v) { return std::fmod(v, 60) != 0; });
    for (double v : ticks) {
      const std::string x = num(px(v));
      os << "<line x1=\"" << x << "\" x2=\"" << x << "\" y1=\"" << num(y0) << "\" y2=\""
         << num(y0 + 5) << "\" stroke=\"#888\"/>\n";
      os << "<text x=\"" << x << "\" y=\"" << num(y0 + 18) << "\" text-anchor=\"middle\">"
         << clock_text(v, seconds) << "</text>\n";
    }
  } else {
    for (double v : linear_ticks(x_.min, x_.max, 8)) {
      const std::string x = num(px(v));
      os << "<line x1=\"" << x << "\" x2=\"" << x << "\" y1=\"" << num(y0) << "\" y2=\""
         << num(y0 + 5) << "\" stroke=\"#888\"/>\n";
      os << "<text x=\"" << x << "\" y=\"" << num(y0 + 18) << "\" text-anchor=\"middle\">"
         << tick_text(v * x_.scale) << "</text>\n";
    }
  }
  os << "<text x=\"" << num((x0 + x1) / 2) << "\" y=\"" << num(height_ - 8)
     << "\" text-anchor=\"middle\" class=\"axis-label\">" << xml_escape(x_.label) << "</text>\n";
  os << "<text transform=\"translate(16," << num((y0 + y1) / 2)
     << ") rotate(-90)\" text-anchor=\"middle\" class=\"axis-label\">" << xml_escape(y_.label)
     << "</text>\n";
  return os.str();
}

// Rows above the plot (two fit in the top margin); each entry as wide as its text needs (about 6.5
// px a character at the page's 12 px font).
std::string svg_chart::legend() const {
  std::ostringstream os;
  double x = left_, y = 14;
  std::vector<legend_item> items = legend_;
  if (data_drawn_)
    for (const std::string& n : notes_) items.push_back({n, "", legend_item::note});
  for (const legend_item& l : items) {
    if (l.label.empty()) continue;
    if (l.kind == legend_item::note) {  // text only, where a symbol and its label would start
      const double needed = 6.5 * static_cast<double>(l.label.size()) + 14;
      if (x > left_ && x + needed > width_ - right_) {
        x = left_;
        y += 17;
      }
      os << "<text x=\"" << num(x) << "\" y=\"" << y + 4 << "\" class=\"no-data\">"
         << xml_escape(l.label) << "</text>\n";
      x += needed;
      continue;
    }
    const double needed = 25 + 6.5 * static_cast<double>(l.label.size()) + 14;
    if (x > left_ && x + needed > width_ - right_) {  // next row
      x = left_;
      y += 17;
    }
    const std::string xs = num(x), xe = num(x + 20);
    switch (l.kind) {
      case legend_item::line:
      case legend_item::dashed:
        os << "<line x1=\"" << xs << "\" x2=\"" << xe << "\" y1=\"" << y << "\" y2=\"" << y
           << "\" stroke=\"" << l.color << "\" stroke-width=\"2\""
           << (l.kind == legend_item::dashed ? " stroke-dasharray=\"6 4\"" : "") << "/>\n";
        break;
      case legend_item::point:
        os << "<circle cx=\"" << num(x + 10) << "\" cy=\"" << y << "\" r=\"4\" fill=\"" << l.color
           << "\"/>\n";
        break;
      case legend_item::note:
        break;
      case legend_item::box:
      case legend_item::shade:
        os << "<rect x=\"" << xs << "\" y=\"" << y - 6 << "\" width=\"20\" height=\"12\" fill=\""
           << l.color << "\" fill-opacity=\"" << (l.kind == legend_item::shade ? "0.25" : "1")
           << "\"/>\n";
        break;
    }
    os << "<text x=\"" << num(x + 25) << "\" y=\"" << y + 4 << "\">" << xml_escape(l.label)
       << "</text>\n";
    x += needed;
  }
  return os.str();
}

std::string svg_chart::notes() const {
  if (data_drawn_) return "";  // in the legend instead
  std::ostringstream os;
  for (std::size_t i = 0; i < notes_.size(); ++i)
    os << "<text x=\"" << num((left_ + width_ - right_) / 2) << "\" y=\""
       << num((top_ + height_ - bottom_) / 2 + 18.0 * static_cast<double>(i))
       << "\" text-anchor=\"middle\" class=\"no-data\">" << xml_escape(notes_[i]) << "</text>\n";
  return os.str();
}

std::string svg_chart::svg(const std::string& aria_label) const {
  std::ostringstream os;
  // Inline in HTML, an <svg> needs no namespace attribute (and the page names no URL at all).
  os << "<svg width=\"" << width_ << "\" height=\"" << height_ << "\" viewBox=\"0 0 " << width_
     << " " << height_ << "\" role=\"img\" aria-label=\"" << xml_escape(aria_label)
     << "\" font-size=\"12\">\n"
     << axes() << "<g>\n"
     << body_ << "</g>\n"
     << legend() << notes() << "</svg>\n";
  return os.str();
}

}  // namespace headroom::report
