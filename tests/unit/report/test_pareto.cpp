#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <set>

#include "haq/report/report.h"

using haq::report::DesignPoint;
using haq::report::Objective;
using haq::report::pareto_front;

namespace {
DesignPoint pt(double acc, double lat, double e, double s, const std::string& label = "") {
  DesignPoint p;
  p.label = label;
  p.kind = "search";
  p.acc_search = acc;
  p.latency_s = lat;
  p.energy_pj = e;
  p.size_bits = s;
  return p;
}
DesignPoint with_policy(DesignPoint p, int bits) {
  p.policy.layers = {{"conv1", bits, bits, false}, {"fc", 8, 8, false}};
  return p;
}
}  // namespace

TEST_CASE("pareto_front drops dominated points and orders by latency") {
  std::vector<DesignPoint> pts = {
      pt(90, 2, 2, 2),        // 0: dominated by 3 (better everywhere)
      pt(95, 3, 1, 1),        // 1: best accuracy
      pt(80, 1, 5, 5),        // 2: fastest
      pt(91, 1.5, 1.5, 1.5),  // 3
      pt(91, 1.5, 1.5, 1.6),  // 4: dominated by 3 (size worse, rest equal)
  };
  CHECK(pareto_front(pts) == std::vector<size_t>{2, 3, 1});
}

TEST_CASE("pareto_front on a single point and on all-equal points") {
  CHECK(pareto_front({pt(50, 1, 1, 1)}) == std::vector<size_t>{0});
  CHECK(pareto_front({}).empty());
  std::vector<DesignPoint> same(5, pt(70, 2, 3, 4));
  CHECK(pareto_front(same) == std::vector<size_t>{0});
}

TEST_CASE("pareto_front keeps the first of identical objective vectors") {
  std::vector<DesignPoint> pts = {pt(80, 5, 5, 5), pt(90, 1, 1, 1), pt(90, 1, 1, 1),
                                  pt(90, 1, 1, 1)};
  CHECK(pareto_front(pts) == std::vector<size_t>{1});
}

TEST_CASE("pareto_front skips non-finite objectives and prefers acc_test") {
  std::vector<DesignPoint> pts = {pt(99, haq::report::kNaN, 1, 1), pt(80, 1, 1, 1),
                                  pt(70, 1, 1, 1)};
  // Point 2's test accuracy (85) beats point 1's search accuracy (80).
  pts[2].acc_test = 85;
  CHECK(pts[2].accuracy() == 85);
  CHECK(pareto_front(pts) == std::vector<size_t>{2});
  DesignPoint none = pt(haq::report::kNaN, 1, 1, 1);
  CHECK(pareto_front({none}).empty());
}

TEST_CASE("pareto_front over two objectives ignores the others") {
  std::vector<DesignPoint> pts = {pt(90, 2, 100, 100), pt(85, 1, 1, 1), pt(80, 3, 0.5, 0.5)};
  // Accuracy vs latency: point 2 is slower and less accurate than 0 -> dominated.
  CHECK(pareto_front(pts, {Objective::accuracy, Objective::latency}) == std::vector<size_t>{1, 0});
  // All four: point 2 wins on energy and size.
  CHECK(pareto_front(pts) == std::vector<size_t>{1, 0, 2});
  // Order follows the first cost objective given.
  CHECK(pareto_front(pts, {Objective::energy, Objective::accuracy}) ==
        std::vector<size_t>{2, 1, 0});
}

TEST_CASE("candidate_points merges duplicates into the first occurrence") {
  haq::report::ReportInput in;
  DesignPoint chosen = with_policy(pt(haq::report::kNaN, 1, 1, 1, "chosen"), 4);
  chosen.kind = "chosen";
  chosen.acc_test = 88;
  DesignPoint again = with_policy(pt(89, 1, 1, 1, "ddpg#7"), 4);
  again.episode = 7;
  DesignPoint other = with_policy(pt(70, 0.5, 0.5, 0.5, "ddpg#8"), 2);
  other.episode = 8;
  in.chosen = chosen;
  in.points = {again, other, again};
  auto all = haq::report::candidate_points(in);
  REQUIRE(all.size() == 2);
  CHECK(all[0].label == "chosen");
  CHECK(all[0].acc_test == 88);
  CHECK(all[0].acc_search == 89);
  CHECK(all[0].episode == 7);
  CHECK(all[1].label == "ddpg#8");
  CHECK(haq::report::report_front(in) == std::vector<size_t>{1, 0});
}

TEST_CASE("report_front leaves fp32 off the front") {
  haq::report::ReportInput in;
  DesignPoint f = pt(99, 0.1, 0.1, 0.1, "fp32");
  f.kind = "fp32";
  in.baselines = {f, with_policy(pt(90, 1, 1, 1, "uniform-4"), 4)};
  in.baselines[1].kind = "uniform";
  CHECK(haq::report::report_front(in) == std::vector<size_t>{1});
}

TEST_CASE("pareto_front matches the all-pairs definition on random points with ties") {
  std::mt19937_64 rng(12345);
  std::uniform_int_distribution<int> level(0, 5);  // a coarse grid: many ties and duplicates
  for (int trial = 0; trial < 30; ++trial) {
    std::vector<DesignPoint> pts;
    int n = 1 + trial * 7;
    for (int i = 0; i < n; ++i) pts.push_back(pt(level(rng), level(rng), level(rng), level(rng)));
    if (trial % 5 == 0) pts[n / 2].latency_s = haq::report::kNaN;
    // Reference: i is on the front iff no j is >= everywhere and (> somewhere or identical with j <
    // i).
    std::set<size_t> expected;
    auto good = [](const DesignPoint& p) {
      return std::vector<double>{p.accuracy(), -p.latency_s, -p.energy_pj, -p.size_bits};
    };
    for (size_t i = 0; i < pts.size(); ++i) {
      auto gi = good(pts[i]);
      if (!std::isfinite(gi[1])) continue;
      bool dominated = false;
      for (size_t j = 0; j < pts.size() && !dominated; ++j) {
        auto gj = good(pts[j]);
        if (j == i || !std::isfinite(gj[1])) continue;
        bool ge = true, gt = false;
        for (size_t o = 0; o < 4; ++o) ge = ge && gj[o] >= gi[o], gt = gt || gj[o] > gi[o];
        dominated = ge && (gt || j < i);
      }
      if (!dominated) expected.insert(i);
    }
    auto front = pareto_front(pts);
    INFO("trial " << trial);
    CHECK(std::set<size_t>(front.begin(), front.end()) == expected);
    CHECK(front.size() == expected.size());
    for (size_t r = 1; r < front.size(); ++r)
      CHECK(pts[front[r - 1]].latency_s <= pts[front[r]].latency_s);
  }
}

TEST_CASE("report_accuracy compares every point on one split") {
  haq::report::ReportInput in;
  DesignPoint a = with_policy(pt(90, 1, 1, 1, "ddpg#1"), 4);  // search 90, no test
  DesignPoint b = with_policy(pt(89, 2, 2, 2, "ddpg#2"), 6);
  b.acc_test = 88;  // re-measured: the test split reads lower
  in.points = {a, b};
  // Mixed: compare on the search split, where b (89 at cost 2) is dominated by a.
  CHECK(haq::report::report_accuracy(in) == Objective::acc_search);
  CHECK(haq::report::report_front(in) == std::vector<size_t>{0});
  // Per point "test else search" would have kept b too (88 < 90 anyway) -- make the
  // mixing matter: a's search accuracy above b's test, b's search accuracy above a's.
  in.points[0].acc_search = 88.5;
  in.points[1].acc_search = 95;
  CHECK(haq::report::report_front(in) == std::vector<size_t>{0, 1});
  // Everything measured on test: the test split.
  in.points[0].acc_test = 87;
  CHECK(haq::report::report_accuracy(in) == Objective::acc_test);
  CHECK(haq::report::report_front(in) == std::vector<size_t>{0, 1});
  in.points[1].acc_test = 86;
  CHECK(haq::report::report_front(in) == std::vector<size_t>{0});
  // Neither split complete: test where measured, else search.
  in.points[0].acc_test = haq::report::kNaN;
  in.points[1].acc_search = haq::report::kNaN;
  CHECK(haq::report::report_accuracy(in) == Objective::accuracy);
}
