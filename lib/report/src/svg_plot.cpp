#include "haq/report/svg_plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace haq::report::svg {

namespace {

constexpr double kPi = 3.14159265358979323846;

/// Fixed one-decimal coordinates keep the output short and deterministic.
std::string num(double v) {
  if (std::abs(v) < 0.05) v = 0;  // no "-0.0"
  return fmt::format("{:.1f}", v);
}

/// Rough width of text in a proportional sans-serif font (no font metrics here).
double text_width_px(const std::string& text, double font_px) {
  size_t chars = 0;
  for (unsigned char c : text)
    if ((c & 0xC0) != 0x80) ++chars;  // count UTF-8 code points
  return static_cast<double>(chars) * font_px * 0.58;
}

/// Keeps the tail of a long name ("…features.3/conv/Conv"); names differ at the end.
std::string shorten(const std::string& text, size_t max_chars) {
  if (text.size() <= max_chars || max_chars < 2) return text;
  size_t start = text.size() - (max_chars - 1);
  while (start < text.size() && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) ++start;
  return "\u2026" + text.substr(start);
}

std::string marker(Shape shape, double cx, double cy, double r, const std::string& attrs,
                   const std::string& tooltip) {
  auto close = [&](const char* tag) {
    return tooltip.empty() ? std::string("/>")
                           : ("><title>" + escape(tooltip) + "</title></" + tag + ">");
  };
  switch (shape) {
    case Shape::circle:
      return fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"{}\" {}{}", num(cx), num(cy), num(r),
                         attrs, close("circle"));
    case Shape::square:
      return fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" {}{}", num(cx - r),
                         num(cy - r), num(2 * r), num(2 * r), attrs, close("rect"));
    case Shape::diamond: {
      double d = r * 1.35;
      return fmt::format("<path d=\"M{},{}L{},{}L{},{}L{},{}Z\" {}{}", num(cx), num(cy - d),
                         num(cx + d), num(cy), num(cx), num(cy + d), num(cx - d), num(cy), attrs,
                         close("path"));
    }
    case Shape::triangle: {  // pointing down: "below the axis"
      double d = r * 1.2;
      return fmt::format("<path d=\"M{},{}L{},{}L{},{}Z\" {}{}", num(cx - d), num(cy - d * 0.6),
                         num(cx + d), num(cy - d * 0.6), num(cx), num(cy + d), attrs,
                         close("path"));
    }
    case Shape::star: {
      std::string d;
      for (int i = 0; i < 10; ++i) {
        double rr = (i % 2 == 0) ? r * 1.7 : r * 0.75;
        double a = -kPi / 2 + i * kPi / 5;
        d += fmt::format("{}{},{}", i == 0 ? "M" : "L", num(cx + rr * std::cos(a)),
                         num(cy + rr * std::sin(a)));
      }
      return fmt::format("<path d=\"{}Z\" {}{}", d, attrs, close("path"));
    }
  }
  return "";
}

std::string marker_attrs(const Style& s) {
  if (s.filled) {
    std::string a = fmt::format("fill=\"{}\" fill-opacity=\"{}\"", escape(s.color),
                                fmt::format("{:.2f}", s.opacity));
    if (s.size_px >= 5)
      a += " stroke=\"#222\" stroke-width=\"1\"";
    else
      a += " stroke=\"none\"";
    return a;
  }
  return fmt::format(
      "fill=\"#fff\" fill-opacity=\"0\" stroke=\"{}\" stroke-opacity=\"{}\" stroke-width=\"1.3\"",
      escape(s.color), fmt::format("{:.2f}", s.opacity));
}

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return !(lo <= hi); }
};

/// Axis range and its ticks: fixed ends where given, nice ticks otherwise.
Ticks axis(Range r, std::optional<double> fixed_lo, std::optional<double> fixed_hi, int target) {
  if (fixed_lo) r.add(*fixed_lo);
  if (fixed_hi) r.add(*fixed_hi);
  if (r.empty()) r = Range{0, 1};
  double lo = fixed_lo ? *fixed_lo : r.lo, hi = fixed_hi ? *fixed_hi : r.hi;
  if (fixed_lo) lo = *fixed_lo;
  Ticks t = nice_ticks(lo, hi, target);
  if (fixed_lo || fixed_hi) {
    double alo = fixed_lo ? *fixed_lo : t.lo, ahi = fixed_hi ? *fixed_hi : t.hi;
    if (!(ahi > alo)) ahi = alo + t.step;
    std::vector<double> kept;
    for (double v : t.values)
      if (v >= alo - 1e-9 * t.step && v <= ahi + 1e-9 * t.step) kept.push_back(v);
    t.values = kept;
    t.lo = alo;
    t.hi = ahi;
  }
  return t;
}

}  // namespace

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
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

Ticks nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (lo > hi) std::swap(lo, hi);
  if (target < 1) target = 1;
  if (hi - lo <= 1e-12 * std::max(std::abs(lo), std::abs(hi))) {
    double d = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  double raw = (hi - lo) / target;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double norm = raw / mag;
  double mult = 10;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (norm <= m * (1 + 1e-9)) {
      mult = m;
      break;
    }
  Ticks t;
  t.step = mult * mag;
  t.lo = std::floor(lo / t.step + 1e-9) * t.step;
  t.hi = std::ceil(hi / t.step - 1e-9) * t.step;
  int n = static_cast<int>(std::llround((t.hi - t.lo) / t.step));
  for (int i = 0; i <= n; ++i) {
    double v = t.lo + i * t.step;
    if (std::abs(v) < t.step * 1e-9) v = 0;
    t.values.push_back(v);
  }
  return t;
}

std::string tick_label(double value, double step) {
  if (std::abs(value) < std::abs(step) * 1e-9) return "0";
  double a = std::abs(value);
  if (a >= 1e7 || (a > 0 && a < 1e-4)) return fmt::format("{:g}", value);
  int decimals = 0;
  for (; decimals < 9; ++decimals) {
    double scaled = std::abs(step) * std::pow(10.0, decimals);
    if (std::abs(scaled - std::round(scaled)) < 1e-6 * std::max(1.0, scaled)) break;
  }
  return fmt::format("{:.{}f}", value, decimals);
}

std::string ScatterPlot::render() const {
  const double ml = 64, mr = 20, mt = 34, H = plot_height_px;
  const double W = width_px, pw = W - ml - mr;
  const double font = 12;

  // Legend rows below the axis label, wrapped to the plot width.
  struct Item {
    const Series* s;
    double x, y;
  };
  std::vector<Item> items;
  double lx = ml, ly = mt + H + 58;
  for (const auto& s : series) {
    if (s.name.empty()) continue;
    double w = 30 + text_width_px(s.name, font) + 16;
    if (lx + w > ml + pw && lx > ml) {
      lx = ml;
      ly += 18;
    }
    items.push_back({&s, lx, ly});
    lx += w;
  }
  const double total_h = (items.empty() ? mt + H + 46 : ly + 12);

  Range xr, yr;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        xr.add(s.x[i]);
        if (!y_min || s.y[i] >= *y_min) yr.add(s.y[i]);
      }
  for (const auto& l : lines) (l.axis == RefLine::vertical ? xr : yr).add(l.value);
  if (x_from_zero && !xr.empty() && xr.lo > 0) xr.lo = 0;
  Ticks xt = axis(xr, x_min, x_max, 6);
  Ticks yt = axis(yr, y_min, y_max, 6);
  auto px = [&](double x) { return ml + (x - xt.lo) / (xt.hi - xt.lo) * pw; };
  auto py = [&](double y) { return mt + H - (y - yt.lo) / (yt.hi - yt.lo) * H; };

  std::string o;
  o += fmt::format(
      "<svg class=\"plot\" viewBox=\"0 0 {0} {1}\" width=\"{0}\" height=\"{1}\" role=\"img\" "
      "aria-label=\"{2}\" font-family=\"sans-serif\" font-size=\"{3}\">\n",
      num(W), num(total_h), escape(title), num(font));
  std::string clip = "clip-" + id;
  o += fmt::format(
      "<defs><clipPath id=\"{}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" "
      "height=\"{}\"/></clipPath></defs>\n",
      escape(clip), num(ml), num(mt), num(pw), num(H));
  o += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fff\" stroke=\"#ccc\"/>\n",
      num(ml), num(mt), num(pw), num(H));
  o += fmt::format("<text x=\"{}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
                   num(ml), escape(title));

  // Grid and ticks.
  o += "<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"1\">\n";
  for (double v : xt.values)
    o += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>\n", num(px(v)), num(mt),
                     num(mt + H));
  for (double v : yt.values)
    o += fmt::format("<line x1=\"{1}\" y1=\"{0}\" x2=\"{2}\" y2=\"{0}\"/>\n", num(py(v)), num(ml),
                     num(ml + pw));
  o += "</g>\n<g class=\"ticks\" fill=\"#333\">\n";
  for (double v : xt.values)
    o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", num(px(v)),
                     num(mt + H + 16), escape(tick_label(v, xt.step)));
  for (double v : yt.values)
    o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", num(ml - 6),
                     num(py(v) + 4), escape(tick_label(v, yt.step)));
  o += "</g>\n";
  o += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#333\"/>\n", num(ml),
                   num(mt), num(mt + H));
  o += fmt::format("<line x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" stroke=\"#333\"/>\n", num(ml),
                   num(ml + pw), num(mt + H));
  o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#222\">{}</text>\n",
                   num(ml + pw / 2), num(mt + H + 36), escape(x_label));
  o += fmt::format(
      "<text transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\" "
      "fill=\"#222\">{}</text>\n",
      num(16), num(mt + H / 2), escape(y_label));

  // Reference lines (under the data).
  for (const auto& l : lines) {
    if (!std::isfinite(l.value)) continue;
    if (l.axis == RefLine::vertical) {
      double x = px(l.value);
      o += fmt::format(
          "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"{3}\" stroke-width=\"1.5\" "
          "stroke-dasharray=\"{4}\"/>\n",
          num(x), num(mt), num(mt + H), escape(l.color), escape(l.dash));
      if (!l.label.empty()) {
        // Label on the side with room for it.
        bool right = x + 6 + text_width_px(l.label, 11) < ml + pw;
        o += fmt::format(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"{}\" font-size=\"11\" fill=\"{}\" "
            "stroke=\"#fff\" "
            "stroke-width=\"3\" paint-order=\"stroke\">{}</text>\n",
            num(right ? x + 4 : x - 4), num(mt + 13), right ? "start" : "end", escape(l.color),
            escape(l.label));
      }
    } else {
      double y = py(l.value);
      o += fmt::format(
          "<line x1=\"{1}\" y1=\"{0}\" x2=\"{2}\" y2=\"{0}\" stroke=\"{3}\" stroke-width=\"1.5\" "
          "stroke-dasharray=\"{4}\"/>\n",
          num(y), num(ml), num(ml + pw), escape(l.color), escape(l.dash));
      // At the left end: high accuracy at low cost is the empty corner.
      if (!l.label.empty())
        o += fmt::format(
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{}\" stroke=\"#fff\" "
            "stroke-width=\"3\" paint-order=\"stroke\">{}</text>\n",
            num(ml + 4), num(y - 4), escape(l.color), escape(l.label));
    }
  }

  // Series: line, then markers, then labels.
  int below = 0;
  for (const auto& s : series) {
    const size_t n = std::min(s.x.size(), s.y.size());
    if (s.style.line_width_px > 0) {
      std::string pts;
      for (size_t i = 0; i < n; ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
        if (!pts.empty()) pts += ' ';
        pts += num(px(s.x[i])) + "," + num(py(s.y[i]));
      }
      if (!pts.empty())
        o += fmt::format(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-opacity=\"{}\" "
            "stroke-width=\"{}\" "
            "stroke-linejoin=\"round\"{} clip-path=\"url(#{})\"/>\n",
            pts, escape(s.style.color), fmt::format("{:.2f}", s.style.opacity),
            num(s.style.line_width_px),
            s.style.dash.empty() ? "" : " stroke-dasharray=\"" + escape(s.style.dash) + "\"",
            escape(clip));
    }
    if (s.style.markers) {
      o += "<g>\n";
      const std::string attrs = marker_attrs(s.style);
      Style hollow = s.style;
      hollow.filled = false;
      hollow.opacity = std::max(0.6, s.style.opacity);
      const std::string hollow_attrs = marker_attrs(hollow);
      for (size_t i = 0; i < n; ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
        double x = std::clamp(px(s.x[i]), ml, ml + pw);
        const std::string& tip = i < s.tooltips.size() ? s.tooltips[i] : std::string();
        if (s.y[i] < yt.lo) {
          ++below;
          o += marker(Shape::triangle, x, mt + H - 5, std::max(2.5, s.style.size_px), hollow_attrs,
                      tip) +
               "\n";
        } else {
          double y = std::max(py(s.y[i]), mt);
          o += marker(s.style.shape, x, y, s.style.size_px, attrs, tip) + "\n";
        }
      }
      o += "</g>\n";
    }
  }
  // Point labels, placed greedily so that they do not overlap: later series
  // (drawn on top, e.g. the chosen point) choose first; each label tries
  // positions around its point and is left out (its tooltip remains) if
  // none is free inside the plot.
  struct Box {
    double x0, y0, x1, y1;
  };
  std::vector<Box> placed;
  for (auto it = series.rbegin(); it != series.rend(); ++it) {
    const Series& s = *it;
    const size_t n = std::min(s.x.size(), s.y.size());
    const double f = s.style.label_font_px;
    for (size_t i = 0; i < n && i < s.labels.size(); ++i) {
      if (s.labels[i].empty() || !std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || s.y[i] < yt.lo)
        continue;
      const double x = px(s.x[i]), y = std::max(py(s.y[i]), mt), r = s.style.size_px + 2;
      const double w = text_width_px(s.labels[i], f), h = f;
      // (baseline offset, left-anchored?) in order of preference.
      struct Pos {
        double dy;
        bool left;
      };
      std::vector<Pos> tries = {{-r, false},         {r + h * 0.8, false}, {-r, true},
                                {r + h * 0.8, true}, {-r - h, false},      {r + h * 1.8, false},
                                {-r - h, true},      {r + h * 1.8, true}};
      if (s.style.label_below) std::swap(tries[0], tries[1]);
      for (const Pos& t : tries) {
        double tx = t.left ? x - r : x + r, ty = y + t.dy;
        Box b{t.left ? tx - w : tx, ty - h * 0.8, t.left ? tx : tx + w, ty + h * 0.2};
        if (b.x0 < ml || b.x1 > ml + pw || b.y0 < mt || b.y1 > mt + H) continue;
        bool clash = false;
        for (const Box& q : placed)
          clash = clash || (b.x0 < q.x1 && q.x0 < b.x1 && b.y0 < q.y1 && q.y0 < b.y1);
        if (clash) continue;
        placed.push_back(b);
        o += fmt::format(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"{}\" font-size=\"{}\" fill=\"#222\" "
            "stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">{}</text>\n",
            num(tx), num(ty), t.left ? "end" : "start", num(f), escape(s.labels[i]));
        break;
      }
    }
  }
  if (below > 0)
    o += fmt::format(
        "<text x=\"{}\" y=\"20\" text-anchor=\"end\" font-size=\"11\" fill=\"#666\">{} below {} "
        "shown as \u25bd on the "
        "axis</text>\n",
        num(ml + pw), below == 1 ? std::string("1 point") : fmt::format("{} points", below),
        escape(tick_label(yt.lo, yt.step)));

  // Legend.
  for (const auto& it : items) {
    const Style& st = it.s->style;
    if (st.line_width_px > 0)
      o += fmt::format(
          "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\"{}/>\n",
          num(it.x), num(it.y - 4), num(it.x + 24), num(it.y - 4), escape(st.color),
          num(st.line_width_px),
          st.dash.empty() ? "" : " stroke-dasharray=\"" + escape(st.dash) + "\"");
    if (st.markers) {
      Style shown = st;
      shown.opacity = std::max(st.opacity, 0.6);
      o += marker(st.shape, it.x + 12, it.y - 4, std::min(st.size_px, 6.0), marker_attrs(shown),
                  "") +
           "\n";
    }
    o += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"#222\">{}</text>\n", num(it.x + 30), num(it.y),
                     escape(it.s->name));
  }
  o += "</svg>\n";
  return o;
}

std::string BarChart::render() const {
  const double mr = 16, mt = 34, H = plot_height_px;
  const double W = width_px;
  const size_t n = categories.size();
  std::vector<std::string> shown;
  for (const auto& c : categories) shown.push_back(shorten(c, max_label_chars));
  // The first rotated label reaches left of its band: widen the margin so it stays inside.
  double ml = 56, band = n ? (W - ml - mr) / static_cast<double>(n) : W - ml - mr;
  double label_font = std::clamp(band * 0.9, 7.0, 10.0);
  if (n > 0) {
    double reach = text_width_px(shown[0], label_font) * 0.7071 - band / 2 + 8;
    if (reach > ml) {
      ml = reach;
      band = (W - ml - mr) / static_cast<double>(n);
      label_font = std::clamp(band * 0.9, 7.0, 10.0);
    }
  }
  const double pw = W - ml - mr;
  // Labels are rotated 45 degrees: their vertical extent is width * sin(45).
  double label_h = 0;
  for (const auto& s : shown) label_h = std::max(label_h, text_width_px(s, label_font) * 0.7071);
  const double total_h = mt + H + 12 + label_h + 8;

  Range r{0, 0};
  for (const auto& g : groups)
    for (double v : g.values) r.add(v);
  Ticks yt;
  if (!y_ticks.empty()) {
    yt.values = y_ticks;
    yt.lo = std::min(0.0, *std::min_element(y_ticks.begin(), y_ticks.end()));
    yt.hi = y_max ? *y_max : std::max(r.hi, *std::max_element(y_ticks.begin(), y_ticks.end()));
    yt.step = y_ticks.size() > 1 ? y_ticks[1] - y_ticks[0] : 1;
  } else {
    yt = axis(r, 0.0, y_max, 5);
  }
  if (!(yt.hi > yt.lo)) yt.hi = yt.lo + 1;
  auto py = [&](double y) { return mt + H - (std::min(y, yt.hi) - yt.lo) / (yt.hi - yt.lo) * H; };

  std::string o;
  o += fmt::format(
      "<svg class=\"plot bars\" viewBox=\"0 0 {0} {1}\" width=\"{0}\" height=\"{1}\" role=\"img\" "
      "aria-label=\"{2}\" font-family=\"sans-serif\" font-size=\"12\">\n",
      num(W), num(total_h), escape(title));
  o += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fff\" stroke=\"#ccc\"/>\n",
      num(ml), num(mt), num(pw), num(H));
  o += fmt::format("<text x=\"{}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
                   num(ml), escape(title));
  // Legend on the title row, right-aligned.
  {
    double x = ml + pw;
    for (auto it = groups.rbegin(); it != groups.rend(); ++it) {
      double w = text_width_px(it->name, 12);
      x -= w;
      o += fmt::format("<text x=\"{}\" y=\"20\" fill=\"#222\">{}</text>\n", num(x),
                       escape(it->name));
      x -= 18;
      o += fmt::format("<rect x=\"{}\" y=\"10\" width=\"12\" height=\"12\" fill=\"{}\"/>\n", num(x),
                       escape(it->color));
      x -= 16;
    }
  }
  o += "<g class=\"grid\" stroke=\"#e6e6e6\">\n";
  for (double v : yt.values)
    o += fmt::format("<line x1=\"{1}\" y1=\"{0}\" x2=\"{2}\" y2=\"{0}\"/>\n", num(py(v)), num(ml),
                     num(ml + pw));
  o += "</g>\n<g class=\"ticks\" fill=\"#333\">\n";
  for (double v : yt.values)
    o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", num(ml - 6),
                     num(py(v) + 4), escape(tick_label(v, yt.step)));
  o += "</g>\n";
  o += fmt::format(
      "<text transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\" "
      "fill=\"#222\">{}</text>\n",
      num(14), num(mt + H / 2), escape(y_label));

  const size_t g = std::max<size_t>(groups.size(), 1);
  const double bar_w = band * 0.8 / static_cast<double>(g);
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const auto& grp = groups[gi];
    o += fmt::format("<g fill=\"{}\">\n", escape(grp.color));
    for (size_t i = 0; i < n && i < grp.values.size(); ++i) {
      double v = grp.values[i];
      double x = ml + band * static_cast<double>(i) + band * 0.1 + bar_w * static_cast<double>(gi);
      const std::string label = i < grp.labels.size() ? grp.labels[i] : std::string();
      std::string tip = fmt::format(
          "{}: {} = {}", categories[i], grp.name,
          std::isfinite(v) ? fmt::format("{:.6g}", v) : (label.empty() ? "n/a" : label));
      if (std::isfinite(v)) {
        double y0 = py(std::max(0.0, yt.lo)), y1 = py(v);
        o += fmt::format(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{}</title></rect>\n", num(x),
            num(std::min(y0, y1)), num(std::max(bar_w - 0.5, 0.5)), num(std::abs(y0 - y1)),
            escape(tip));
      }
      if (!label.empty() && bar_w >= 6) {
        double y = std::isfinite(v) ? py(v) - 3 : py(std::max(0.0, yt.lo)) - 3;
        o += fmt::format(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"{}\" "
            "fill=\"#333\">{}<title>{}</title></text>\n",
            num(x + bar_w / 2), num(y), num(std::min(9.0, bar_w * 1.1)), escape(label),
            escape(tip));
      }
    }
    o += "</g>\n";
  }
  o += fmt::format("<line x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" stroke=\"#333\"/>\n", num(ml),
                   num(ml + pw), num(py(std::max(0.0, yt.lo))));
  o += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#333\"/>\n", num(ml),
                   num(mt), num(mt + H));
  o += fmt::format("<g class=\"categories\" fill=\"#333\" font-size=\"{}\">\n", num(label_font));
  for (size_t i = 0; i < n; ++i) {
    double x = ml + band * (static_cast<double>(i) + 0.5);
    const std::string& tip =
        i < tooltips.size() && !tooltips[i].empty() ? tooltips[i] : categories[i];
    o += fmt::format(
        "<text transform=\"translate({},{}) rotate(-45)\" "
        "text-anchor=\"end\">{}<title>{}</title></text>\n",
        num(x + 3), num(mt + H + 10), escape(shown[i]), escape(tip));
  }
  o += "</g>\n</svg>\n";
  return o;
}

}  // namespace haq::report::svg
