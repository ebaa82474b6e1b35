#pragma once
/// \file
/// A small SVG plotting module for self-contained HTML reports: scatter/line
/// plots and grouped bar charts with "nice" axis ticks, legends and per-point
/// tooltips (<title>). Output is inline SVG for HTML5 (no xmlns, no external
/// fonts or scripts), well-formed XML, with every text escaped.
///
/// \code
///   svg::ScatterPlot p;
///   p.id = "lat"; p.title = "Accuracy vs latency";
///   p.x_label = "latency (ms)"; p.y_label = "top-1 accuracy (%)";
///   svg::Series s; s.name = "evaluated"; s.x = {...}; s.y = {...};
///   p.series.push_back(s);
///   p.lines.push_back({svg::RefLine::vertical, 1.5, "budget", "#d62728", "6 4"});
///   std::string markup = p.render();
/// \endcode
///
/// Rendering is deterministic: coordinates are printed with fixed decimals.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace haq::report::svg {

/// Escapes text for HTML/XML content and attribute values (& < > " ').
std::string escape(std::string_view text);

/// Axis ticks: `values` from `lo` to `hi` (both multiples of `step`).
struct Ticks {
  double lo = 0, hi = 1, step = 0.2;
  std::vector<double> values;
};

/// "Nice" ticks covering [lo, hi]: step is 1, 2, 2.5 or 5 times a power of
/// ten, chosen so that about `target` intervals span the range; the range is
/// widened outwards to multiples of the step. A degenerate range (lo == hi)
/// is widened around the value. Non-finite input gives the ticks of [0, 1].
Ticks nice_ticks(double lo, double hi, int target = 5);

/// A tick label with as many decimals as the step needs ("0.25", "10", "1e+06" for huge).
std::string tick_label(double value, double step);

/// Marker shapes.
enum class Shape { circle, square, diamond, triangle, star };

/// How a series is drawn.
struct Style {
  std::string color = "#1f77b4";  ///< any CSS colour
  double opacity = 1.0;           ///< of markers and line
  double size_px = 3.0;           ///< marker radius
  Shape shape = Shape::circle;
  bool filled = true;         ///< false: outline only
  bool markers = true;        ///< draw a marker per point
  double line_width_px = 0;   ///< > 0: a polyline through the points, in the order given
  std::string dash;           ///< stroke-dasharray of the line ("" = solid)
  double label_font_px = 11;  ///< size of per-point labels
  bool label_below = false;   ///< labels down-right of the point (default up-right)
};

/// A set of points. Points with a non-finite coordinate are skipped.
struct Series {
  std::string name;  ///< legend entry; "" = not in the legend
  std::vector<double> x, y;
  std::vector<std::string>
      labels;  ///< optional text beside each point (same length as x, or empty)
  std::vector<std::string>
      tooltips;  ///< optional hover text per point (same length as x, or empty)
  Style style;
};

/// A reference line across the plot (a budget, a baseline accuracy).
struct RefLine {
  enum Axis { vertical, horizontal };
  Axis axis = vertical;
  double value = 0;   ///< x for vertical, y for horizontal
  std::string label;  ///< drawn at the line's end ("" = none)
  std::string color = "#555";
  std::string dash = "6 4";  ///< stroke-dasharray
};

/// A scatter plot with optional lines. Points below a fixed y_min are drawn
/// on the bottom edge as hollow down-pointing triangles and counted in a
/// note, so that a few collapsed points do not squash the interesting range.
struct ScatterPlot {
  std::string id;  ///< unique within the page (used for the clip path id)
  std::string title, x_label, y_label;
  double width_px = 600;        ///< of the whole figure
  double plot_height_px = 340;  ///< of the plotting area; the legend adds rows below
  std::vector<Series> series;   ///< drawn in order (later on top)
  std::vector<RefLine> lines;
  std::optional<double> x_min, x_max, y_min, y_max;  ///< fixed ranges (else from the data)
  bool x_from_zero = true;                           ///< include 0 in the automatic x range

  /// The <svg> element.
  std::string render() const;
};

/// One group of bars (e.g. "w bits") in a grouped bar chart.
struct BarGroup {
  std::string name;  ///< legend entry
  std::string color = "#1f77b4";
  std::vector<double> values;       ///< one per category; NaN = no bar
  std::vector<std::string> labels;  ///< optional text above each bar (same length, or empty)
};

/// A grouped bar chart: one band per category, the groups side by side.
struct BarChart {
  std::string title, y_label;
  std::vector<std::string>
      categories;  ///< x labels (long ones are shortened, the full name is the tooltip)
  std::vector<std::string> tooltips;  ///< optional hover text per category
  std::vector<BarGroup> groups;
  double width_px = 1160;
  double plot_height_px = 220;
  std::optional<double> y_max;  ///< fixed top of the axis
  std::vector<double> y_ticks;  ///< explicit ticks (else nice ticks from 0)
  size_t max_label_chars = 26;  ///< category labels longer than this keep their tail

  /// The <svg> element.
  std::string render() const;
};

}  // namespace haq::report::svg
