#include <catch2/catch.hpp>
#include <cmath>

#include "haq/report/report.h"
#include "haq/report/svg_plot.h"
#include "xml_check.h"

using namespace haq::report::svg;

namespace {
size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}
}  // namespace

TEST_CASE("nice_ticks picks 1/2/2.5/5 steps and widens to multiples") {
  Ticks t = nice_ticks(0, 9.3, 5);
  CHECK(t.step == 2);
  CHECK(t.values == std::vector<double>{0, 2, 4, 6, 8, 10});
  t = nice_ticks(0.0013, 0.0071, 5);
  CHECK(t.step == Approx(0.002));
  REQUIRE(t.values.size() == 5);
  CHECK(t.values.front() == 0);
  CHECK(t.values.back() == Approx(0.008));
  t = nice_ticks(0, 1.1, 5);
  CHECK(t.step == Approx(0.25));
  CHECK(t.hi == Approx(1.25));
  t = nice_ticks(-3, 7, 5);
  CHECK(t.step == 2);
  CHECK(t.lo == -4);
  CHECK(t.hi == 8);
  // Degenerate and invalid ranges still give an increasing axis.
  t = nice_ticks(5, 5, 5);
  CHECK(t.lo < 5);
  CHECK(t.hi > 5);
  CHECK(t.values.size() >= 2);
  t = nice_ticks(NAN, 3, 5);
  CHECK(t.lo == 0);
  CHECK(t.hi == 1);
}

TEST_CASE("tick_label uses the decimals of the step") {
  CHECK(tick_label(0.25, 0.25) == "0.25");
  CHECK(tick_label(0.5, 0.25) == "0.50");
  CHECK(tick_label(40, 10) == "40");
  CHECK(tick_label(0.004, 0.002) == "0.004");
  CHECK(tick_label(1e-12, 0.002) == "0");
  CHECK(tick_label(2e8, 1e8) == "2e+08");
}

TEST_CASE("escape handles the five XML specials") {
  CHECK(escape("a<b & \"c\" 'd'>") == "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
  CHECK(escape("plain") == "plain");
}

TEST_CASE("ScatterPlot renders markers, clamps low points, escapes text") {
  ScatterPlot p;
  p.id = "t";
  p.title = "A <vs> B";
  p.x_label = "x & y";
  p.y_label = "acc";
  p.y_min = 50;
  p.y_max = 100;
  Series s;
  s.name = "pts";
  s.x = {1, 2, 3, 4, NAN};
  s.y = {60, 70, 10, 20, 90};
  s.tooltips = {"one", "two", "three", "four", "five"};
  p.series.push_back(s);
  p.lines.push_back({RefLine::vertical, 2.5, "budget <=", "#d00", "6 4"});
  std::string out = p.render();
  CHECK(haq::test::xml_problem(out) == "");
  CHECK(count(out, "<circle") == 2 + 1);  // two in range, one legend sample
  CHECK(out.find("2 points below 50") != std::string::npos);
  CHECK(out.find("A &lt;vs&gt; B") != std::string::npos);
  CHECK(out.find("budget &lt;=") != std::string::npos);
  CHECK(out.find("<title>three</title>") !=
        std::string::npos);                      // clamped points keep their tooltip
  CHECK(out.find("five") == std::string::npos);  // non-finite point skipped
}

TEST_CASE("BarChart draws one bar per finite value and labels the rest") {
  BarChart c;
  c.title = "bits";
  c.categories = {"a", "a-very-long-layer-name/with/many/parts/Conv"};
  c.max_label_chars = 12;
  c.y_max = 8;
  c.y_ticks = {0, 2, 4, 6, 8};
  c.groups = {{"w", "#00f", {4, NAN}, {"4", "fp32"}}, {"a", "#f00", {8, 2}, {}}};
  std::string out = c.render();
  CHECK(haq::test::xml_problem(out) == "");
  CHECK(count(out, "<rect") == 1 + 3 + 2);  // background, three bars, two legend swatches
  CHECK(out.find(">fp32<") != std::string::npos);
  CHECK(out.find("\u2026/parts/Conv<title>a-very-long-layer-name/with/many/parts/Conv</title>") !=
        std::string::npos);
}
