#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "haq/core/error.h"
#include "haq/core/files.h"
#include "haq/report/report.h"
#include "synthetic.h"
#include "test_paths.h"
#include "xml_check.h"

namespace fs = std::filesystem;
using namespace haq::report;

namespace {

ReportInput two_points() {
  ReportInput in;
  in.model = "m.onnx";
  in.w8a8_latency_s = 0.002;
  in.w8a8_energy_pj = 1e6;
  in.w8a8_size_bits = 8000;
  in.w8a8_bops = 1e6;
  DesignPoint a;
  a.label = "ddpg#0";
  a.kind = "search";
  a.episode = 0;
  a.acc_search = 85.5;
  a.latency_s = 0.001;
  a.energy_pj = 5e5;
  a.size_bits = 4000;
  a.bops = 2.5e5;
  a.policy.layers = {{"conv1", 4, 4, false}, {"fc", 8, 8, false}};
  DesignPoint b;
  b.label = "odd, \"name\"";
  b.kind = "search";
  b.episode = 1;
  b.feasible = false;
  b.acc_search = 80.25;
  b.acc_test = 79.5;
  b.acc_select = 81.75;
  b.latency_s = 0.0015;
  b.energy_pj = 7.5e5;
  b.size_bits = 6000;
  b.policy.layers = {{"conv1", 6, 6, false}, {"fc", 32, 32, true}};
  in.points = {a, b};
  return in;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("points.csv: exact content for two points") {
  const std::string expected =
      "index,label,kind,episode,feasible,pareto,acc_search,acc_test,acc_select,latency_s,energy_pj,"
      "size_bits,bops,"
      "latency_x_w8a8,energy_x_w8a8,size_x_w8a8,bops_x_w8a8,policy\n"
      "0,ddpg#0,search,0,1,1,85.5,,,0.001,500000,4000,250000,0.5,0.5,0.5,0.25,w4a4 w8a8\n"
      "1,\"odd, \"\"name\"\"\",search,1,0,0,80.25,79.5,81.75,0.0015,750000,6000,,0.75,0.75,0.75,,w6a6 "
      "fp32\n";
  CHECK(points_csv(two_points()) == expected);
}

TEST_CASE("pareto.json round-trips through a JSON parser") {
  ReportInput in = haq::test::synthetic_input(120);
  auto all = candidate_points(in);
  auto front = report_front(in);
  REQUIRE(front.size() >= 3);
  nlohmann::json j = nlohmann::json::parse(pareto_json(in).dump(2));
  CHECK(j["schema"] == "haq.pareto/1");
  CHECK(j["model"] == in.model);
  CHECK(j["seed"] == in.seed);
  CHECK(j["budgets"][0]["text"] == "latency<=0.5x");
  CHECK(j["budgets"][0]["limit"].get<double>() == in.budgets[0].limit);
  CHECK(j["count"] == front.size());
  CHECK(j["accuracy_is"] == "acc_search");
  REQUIRE(j["points"].size() == front.size());
  for (size_t r = 0; r < front.size(); ++r) {
    const auto& e = j["points"][r];
    const DesignPoint& p = all[front[r]];
    CHECK(e["index"] == front[r]);
    CHECK(e["label"] == p.label);
    CHECK(e["latency_s"].get<double>() == p.latency_s);  // exact: shortest round-trip formatting
    CHECK(e["energy_pj"].get<double>() == p.energy_pj);
    CHECK(e["accuracy"].get<double>() == p.acc_search);  // search points have no test accuracy
    CHECK(e["latency_x_w8a8"].get<double>() == p.latency_s / in.w8a8_latency_s);
    REQUIRE(e["layers"].size() == p.policy.layers.size());
    for (size_t i = 0; i < p.policy.layers.size(); ++i) {
      CHECK(e["layers"][i]["name"] == p.policy.layers[i].layer);
      CHECK(e["layers"][i]["w_bits"] == p.policy.layers[i].w_bits);
      CHECK(e["layers"][i]["a_bits"] == p.policy.layers[i].a_bits);
    }
    // Not measured -> null, never NaN text.
    if (!std::isfinite(p.acc_test)) CHECK(e["acc_test"].is_null());
  }
  // The front is ordered by latency.
  for (size_t r = 1; r < front.size(); ++r)
    CHECK(j["points"][r - 1]["latency_s"].get<double>() <=
          j["points"][r]["latency_s"].get<double>());
  // fp32 layers are written as {"name", "fp32": true}.
  nlohmann::json two = nlohmann::json::parse(pareto_json(two_points()).dump());
  REQUIRE(two["points"].size() == 1);
  CHECK(two["points"][0]["label"] == "ddpg#0");
}

TEST_CASE("report.html is self-contained, well-formed and has every plot") {
  ReportInput in = haq::test::synthetic_input(150);
  in.model = "models/<b>&odd\"name'.onnx";
  std::string html = report_html(in);
  // 4 scatter plots (latency, energy, size, bops), search progress, 3 per-layer bar charts.
  CHECK(count(html, "<svg") == 8);
  CHECK(count(html, "</svg>") == 8);
  CHECK(html.find("http") == std::string::npos);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  CHECK(html.find("@import") == std::string::npos);
  CHECK(haq::test::xml_problem(html) == "");
  CHECK(html.find("<b>&odd") == std::string::npos);
  CHECK(html.find("models/&lt;b&gt;&amp;odd&quot;name&#39;.onnx") != std::string::npos);
  // Every scatter plot has the chosen point and the budget line only where the metric matches.
  CHECK(count(html, "paint-order=\"stroke\">chosen</text>") == 4);
  CHECK(count(html, "budget latency&lt;=0.5x") == 1);
  // Summary rows: fp32, 7 uniform, W8A8, chosen.
  size_t a = html.find("<h2>Summary"), b = html.find("<h2>Accuracy vs cost");
  REQUIRE(a < b);
  std::string summary = html.substr(a, b - a);
  CHECK(count(summary, "-bit</td>") == 7);
  CHECK(count(summary, "<tr") == 1 + 1 + 7 + 1 + 1);  // header, fp32, uniform, W8A8, chosen
  CHECK(html.find("<tr class=\"chosen\"><td class=\"l\">chosen</td>") != std::string::npos);
}

TEST_CASE("report.html without layers, budgets or a chosen point is still well-formed") {
  ReportInput in = two_points();
  std::string html = report_html(in);
  CHECK(haq::test::xml_problem(html) == "");
  CHECK(count(html, "<svg") == 5);  // no per-layer charts
  CHECK(html.find("No policy was found") != std::string::npos);
  ReportInput empty;
  CHECK(haq::test::xml_problem(report_html(empty)) == "");
  CHECK(points_csv(empty).find('\n') == points_csv(empty).size() - 1);  // header only
}

TEST_CASE("report.md has the summary, budgets and the per-layer table") {
  ReportInput in = haq::test::synthetic_input(100);
  std::string md = report_markdown(in);
  CHECK(md.find("# haq report: models/fmnist-mobilenet.onnx on bismo-edge") == 0);
  CHECK(md.find("| **chosen** |") != std::string::npos);
  CHECK(md.find("| 4-bit |") != std::string::npos);
  CHECK(md.find("`latency<=0.5x`: chosen") != std::string::npos);
  CHECK(md.find("\u2014 met") != std::string::npos);
  // One row per layer: "| 0 | `/features/...` |" ... "| 13 | `/classifier...` |".
  CHECK(md.find("| 0 | `/features/features.0/features.0.0/Conv` |") != std::string::npos);
  CHECK(md.find(fmt::format("| {} | `/classifier/classifier.1/Gemm` |", in.layers.size() - 1)) !=
        std::string::npos);
  CHECK(md.find("`pareto.json`") != std::string::npos);
}

TEST_CASE("write_report is deterministic") {
  auto d1 = haq::test::scratch_dir("report_det1");
  auto d2 = haq::test::scratch_dir("report_det2");
  write_report(haq::test::synthetic_input(200, 3), d1);
  write_report(haq::test::synthetic_input(200, 3), d2);
  for (const char* f : {"pareto.json", "points.csv", "report.md", "report.html"}) {
    INFO(f);
    std::string a = haq::read_file(d1 / f);
    CHECK(a.size() > 100);
    CHECK(a == haq::read_file(d2 / f));
  }
  // Only the four files: no temporaries left.
  int n = 0;
  for (auto& e : fs::directory_iterator(d1)) (void)e, ++n;
  CHECK(n == 4);
  // A different seed gives a different report.
  auto d3 = haq::test::scratch_dir("report_det3");
  write_report(haq::test::synthetic_input(200, 4), d3);
  CHECK(haq::read_file(d1 / "points.csv") != haq::read_file(d3 / "points.csv"));
}

TEST_CASE("write_report into an unwritable place throws and leaves nothing") {
  ReportInput in = haq::test::synthetic_input(50);
  auto dir = haq::test::scratch_dir("report_unwritable");

  SECTION("the output folder's parent is a file") {
    haq::write_file_atomic(dir / "blocker", "x");
    try {
      write_report(in, dir / "blocker" / "out");
      FAIL("no throw");
    } catch (const haq::Error& e) {
      CHECK(e.kind() == haq::ErrorKind::io);
      CHECK(std::string(e.what()).find("blocker") != std::string::npos);
    }
    CHECK(haq::read_file(dir / "blocker") == "x");
  }
  SECTION("a folder sits where a report file goes") {
    fs::create_directories(dir / "out" / "report.html");
    CHECK_THROWS_AS(write_report(in, dir / "out"), haq::Error);
    int n = 0;
    for (auto& e : fs::directory_iterator(dir / "out")) (void)e, ++n;
    CHECK(n == 1);  // only the folder that was in the way
  }
  SECTION("a read-only folder (skipped as root, where permissions do not apply)") {
    if (::geteuid() != 0) {
      fs::create_directories(dir / "ro");
      fs::permissions(dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
      CHECK_THROWS_AS(write_report(in, dir / "ro"), haq::Error);
      fs::permissions(dir / "ro", fs::perms::owner_all);
      CHECK(fs::is_empty(dir / "ro"));
    }
  }
}
