// Small SVG charts drawn by hand for the HTML report: axes with ticks and labelled units, lines,
// points, bands, bars and a legend. Plain inline SVG: nothing is fetched from anywhere.
#pragma once

#include <string>
#include <vector>

namespace headroom::report {

struct axis {
  std::string label;  // with its unit: "offered rate (req/s)"
  double min = 0, max = 1;
  bool log = false;  // log10 scale (min > 0)
  // Bar charts: one tick per category, at x = 0, 1, ... (min and max are then set around them).
  std::vector<std::string> categories;
  // Tick labels are value x scale (seconds drawn as milliseconds: scale 1000).
  double scale = 1;
  // Values are unix seconds, ticked at round clock times and labelled "08:05" or "08:05:30" UTC.
  bool clock = false;
};

class svg_chart {
 public:
  svg_chart(axis x, axis y, int width = 900, int height = 380);

  // A non-finite y breaks the line (an unstable point has no latency).
  void line(const std::vector<double>& x, const std::vector<double>& y, const std::string& color,
            const std::string& label, bool dashed = false);
  void points(const std::vector<double>& x, const std::vector<double>& y, const std::string& color,
              const std::string& label, bool hollow = false);
  // Shaded area between low and high; +inf (a run that fell over) reaches the top of the chart.
  void band(const std::vector<double>& x, const std::vector<double>& low,
            const std::vector<double>& high, const std::string& color, const std::string& label);
  void hline(double y, const std::string& color, const std::string& label);
  void vline(double x, const std::string& color, const std::string& label);
  // A bar from y0 to y1 centred on x, `width` in x units (legend entries: legend_box).
  void bar(double x, double y0, double y1, double width, const std::string& color,
           const std::string& tooltip);
  // A vertical interval with a tick at `mid` (a prediction interval).
  void whisker(double x, double low, double mid, double high, const std::string& color);
  void legend_box(const std::string& label, const std::string& color);
  // A line of text ("no data for ..."): centred on the plot when no line is drawn, else in the
  // legend, out of the lines' way.
  void note(const std::string& text);

  std::string svg(const std::string& aria_label) const;

 private:
  double px(double x) const;
  double py(double y) const;  // clamped to the plot area
  std::string axes() const;
  std::string legend() const;
  std::string notes() const;

  struct legend_item {
    std::string label, color;
    // shade: a band's light fill; note: text alone (a note beside data)
    enum { line, dashed, point, box, shade, note } kind;
  };
  axis x_, y_;
  int width_, height_;
  double left_ = 72, right_ = 16, top_ = 56, bottom_ = 50;
  std::string body_;
  bool data_drawn_ = false;  // a line has been drawn (notes then move out of its way)
  std::vector<legend_item> legend_;
  std::vector<std::string> notes_;
};

// "a < b & c" with the five XML entities escaped, for SVG and HTML text.
std::string xml_escape(const std::string& text);

}  // namespace headroom::report
