#include <catch2/catch.hpp>

#include <map>

#include "fake_problem.h"
#include "haq/search/select.h"

using namespace haq;
using namespace haq::search;

namespace {

BitsVector uniform(int w, int a) { return BitsVector(5, Bits{w, a}); }

// A point as the search loop makes it: key, costs and feasibility from the problem.
EvaluatedPoint point(const SearchProblem& p, BitsVector bits, double search_acc, int episode) {
  EvaluatedPoint e;
  e.bits = bits;
  e.key = quant::policy_key(to_policy(p.layers, bits));
  e.accuracy_pct = search_acc;
  e.costs = p.costs.total(bits);
  e.feasible = within_budgets(e.costs, p.budgets);
  e.episode = episode;
  e.phase = "explore";
  return e;
}

// Selection accuracy by policy key, counting the measurements.
struct Table {
  std::map<std::string, double> acc;
  std::vector<std::string> asked;
  AccuracyFn fn() {
    return [this](const quant::Policy& pol) {
      auto key = quant::policy_key(pol);
      asked.push_back(key);
      auto it = acc.find(key);
      return it == acc.end() ? 0.0 : it->second;
    };
  }
};

std::string key_of(const SearchProblem& p, const BitsVector& b) {
  return quant::policy_key(to_policy(p.layers, b));
}

}  // namespace

TEST_CASE("select: the best on the larger subset wins, not the search's best", "[search][select]") {
  auto p = fake::fake_problem();  // latency <= 0.4x of w8a8
  BitsVector a = uniform(4, 4), b = uniform(5, 4), c = uniform(8, 8);
  b[0] = {4, 5};
  SearchResult r;
  r.points = {point(p, a, 90, 0), point(p, b, 89, 1), point(p, c, 95, 2)};
  REQUIRE(r.points[0].feasible);
  REQUIRE(r.points[1].feasible);
  REQUIRE_FALSE(r.points[2].feasible);
  Table t;
  t.acc = {{key_of(p, a), 80}, {key_of(p, b), 85}, {key_of(p, c), 99}};

  SECTION("every feasible point is a candidate; the infeasible one is never measured") {
    Selection s = select_policy(r, p, {}, 8, t.fn());
    REQUIRE(s.done);
    CHECK(s.candidates == std::vector<int>{0, 1});
    CHECK(s.accuracy == std::vector<double>{80, 85});
    CHECK(s.chosen == 1);
    CHECK(t.asked.size() == 2);
    CHECK(r.points.size() == 3);
  }
  SECTION("top = 1 measures only the search's best") {
    Selection s = select_policy(r, p, {}, 1, t.fn());
    CHECK(s.candidates == std::vector<int>{0});
    CHECK(s.chosen == 0);
  }
  SECTION("a tie on the subset goes to the higher search accuracy") {
    t.acc[key_of(p, b)] = 80;
    Selection s = select_policy(r, p, {}, 8, t.fn());
    CHECK(s.chosen == 0);
  }
  SECTION("no feasible point and no extra: nothing chosen") {
    r.points = {point(p, c, 95, 0)};
    Selection s = select_policy(r, p, {}, 8, t.fn());
    CHECK_FALSE(s.done);
    CHECK(s.chosen == -1);
    CHECK(t.asked.empty());
  }
}

TEST_CASE("select: fitting extras join as points and the others are skipped", "[search][select]") {
  auto p = fake::fake_problem();
  BitsVector a = uniform(4, 4);
  a[4] = {3, 4};
  SearchResult r;
  r.points = {point(p, a, 88, 0)};
  Table t;
  t.acc = {{key_of(p, a), 80}, {key_of(p, uniform(4, 4)), 82}, {key_of(p, uniform(3, 3)), 81}};
  const std::vector<ExtraCandidate> extra = {
      {"uniform-1", uniform(1, 1)},  // outside the searched range 2..8
      {"uniform-3", uniform(3, 3)},
      {"uniform-4", uniform(4, 4)},
      {"uniform-6", uniform(6, 6)},  // 36/64 = 0.5625x latency: over the budget
      {"again", a},                  // already a point: not added twice
  };
  Selection s = select_policy(r, p, extra, 8, t.fn());
  REQUIRE(s.done);
  REQUIRE(r.points.size() == 3);
  CHECK(s.candidates == std::vector<int>{0, 1, 2});
  CHECK(s.accuracy == std::vector<double>{80, 81, 82});
  CHECK(s.chosen == 2);
  const auto& u4 = r.points[2];
  CHECK(u4.episode == -1);
  CHECK(u4.phase == "uniform-4");
  CHECK(u4.feasible);
  CHECK(u4.key == key_of(p, uniform(4, 4)));
  CHECK(u4.costs == p.costs.uniform(4, 4));
  // its search accuracy is measured by the problem's own function
  CHECK(u4.accuracy_pct == Approx(p.accuracy(to_policy(p.layers, uniform(4, 4)))));
  CHECK(r.points[1].phase == "uniform-3");
}
