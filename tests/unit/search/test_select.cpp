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

namespace {

// Accuracy of exactly the surrogate's form, so a fit can recover it.
double noise_form(const BitsVector& b) {
  const double cw[5] = {-100, -20, 0, -60, -5}, ca[5] = {-50, -10, -5, -30, -80};
  double acc = 95;
  for (size_t l = 0; l < b.size(); ++l)
    acc += cw[l] * std::ldexp(1.0, -2 * b[l].w) + ca[l] * std::ldexp(1.0, -2 * b[l].a);
  return acc;
}

SearchProblem noise_problem() {
  auto p = fake::fake_problem("latency<=0.4x");
  p.accuracy = [](const quant::Policy& pol) { return noise_form(to_bits(pol)); };
  return p;
}

// 80 pseudo-random policies (a fixed LCG), measured like the search does.
SearchResult random_points(const SearchProblem& p) {
  SearchResult r;
  uint64_t s = 12345;
  auto next = [&] {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<int>((s >> 33) % 7) + 2;
  };
  for (int i = 0; i < 80; ++i) {
    BitsVector b(5);
    for (auto& x : b) x = {next(), next()};
    r.points.push_back(point(p, b, noise_form(b), i));
  }
  return r;
}

}  // namespace

TEST_CASE("select: the surrogate fit recovers coefficients of its own form", "[search][select]") {
  auto p = noise_problem();
  SearchResult r = random_points(p);
  Surrogate s = fit_surrogate(r.points, 5, -1e9, 1e-12);
  REQUIRE(s.cw.size() == 5);
  CHECK(s.c0 == Approx(95).epsilon(1e-6));
  CHECK(s.cw[0] == Approx(-100).epsilon(1e-4));
  CHECK(s.cw[3] == Approx(-60).epsilon(1e-4));
  CHECK(s.ca[4] == Approx(-80).epsilon(1e-4));
  CHECK(std::abs(s.cw[2]) < 1e-3);
  BitsVector b(5, Bits{3, 5});
  CHECK(s.predict(b) == Approx(noise_form(b)).epsilon(1e-6));
  // points below the floor are left out; with fewer than two, no fit
  CHECK(fit_surrogate(r.points, 5, 1e9).cw.empty());
}

TEST_CASE("select: refinement takes the best one-bit move within the budget", "[search][select]") {
  auto p = noise_problem();
  SearchResult r = random_points(p);
  // Start from the search's best feasible point.
  AccuracyFn exact = [](const quant::Policy& pol) { return noise_form(to_bits(pol)); };
  Selection s = select_policy(r, p, {}, 1, exact);
  REQUIRE(s.done);
  const BitsVector start = r.points[s.chosen].bits;
  const size_t before = r.points.size();

  // Brute force: every one-bit move (one side up, optionally another down) that fits.
  double best = noise_form(start);
  for (size_t l = 0; l < 5; ++l)
    for (int side = 0; side < 2; ++side) {
      BitsVector up = start;
      int& u = side ? up[l].a : up[l].w;
      if (++u > 8) continue;
      auto see = [&](const BitsVector& b) {
        if (within_budgets(p.costs.total(b), p.budgets)) best = std::max(best, noise_form(b));
      };
      see(up);
      for (size_t l2 = 0; l2 < 5; ++l2)
        for (int side2 = 0; side2 < 2; ++side2) {
          if (l2 == l && side2 == side) continue;
          BitsVector b = up;
          int& d = side2 ? b[l2].a : b[l2].w;
          if (--d < 2) continue;
          see(b);
        }
    }
  REQUIRE(best > noise_form(start));  // the start can be improved

  SECTION("one round, one move: the predicted best is the true best") {
    refine_selection(s, r, p, 1, 1, exact);
    CHECK(noise_form(r.points[s.chosen].bits) == Approx(best));
    CHECK(s.candidates.size() == 2);
    CHECK(r.points[s.chosen].episode == -1);
    CHECK(r.points[s.chosen].phase == "refine-1");
    CHECK(r.points[s.chosen].feasible);
    CHECK(r.points.size() == before + 1);
  }
  SECTION("more rounds climb further, every candidate within the budget") {
    refine_selection(s, r, p, 4, 3, exact);
    CHECK(noise_form(r.points[s.chosen].bits) >= best);
    for (size_t k = 0; k < s.candidates.size(); ++k) {
      CHECK(r.points[s.candidates[k]].feasible);
      CHECK(s.accuracy[k] == Approx(noise_form(r.points[s.candidates[k]].bits)));
    }
    CHECK(s.candidates.size() > 4);
  }
  SECTION("a stop request (Ctrl-C) ends the refinement before it measures") {
    const int chosen = s.chosen;
    request_stop();
    refine_selection(s, r, p, 3, 3, exact);
    reset_stop();
    CHECK(s.chosen == chosen);
    CHECK(s.candidates.size() == 1);
    CHECK(r.points.size() == before);
  }
  SECTION("no rounds: nothing changes") {
    const int chosen = s.chosen;
    refine_selection(s, r, p, 0, 3, exact);
    CHECK(s.chosen == chosen);
    CHECK(r.points.size() == before);
  }
}

TEST_CASE("select: a final choice stopped early keeps the best of what it measured", "[search][select]") {
  auto p = fake::fake_problem();
  BitsVector a = uniform(4, 4), b = uniform(5, 4), c = uniform(4, 3);
  b[0] = {4, 5};
  SearchResult r;
  r.points = {point(p, a, 90, 0), point(p, b, 89, 1), point(p, c, 88, 2)};
  Table t;
  t.acc = {{key_of(p, a), 80}, {key_of(p, b), 85}, {key_of(p, c), 99}, {key_of(p, uniform(3, 3)), 99.5}};
  const std::vector<ExtraCandidate> extra = {{"uniform-3", uniform(3, 3)}};
  CHECK(planned_selection_measurements(r, p, extra, 8, 2, 5) == 4 + 10);
  int new_points = -1;
  planned_selection_measurements(r, p, extra, 8, 0, 5, &new_points);
  CHECK(new_points == 1);
  // A "time budget" that runs out after `n` measurements.
  auto after = [&](size_t n) {
    SelectionHooks h;
    h.stop_reason = [&t, n]() -> std::string { return t.asked.size() >= n ? "time budget" : ""; };
    return h;
  };

  SECTION("after two of four: the better of the two, the rest never measured nor added") {
    std::vector<int> seen;
    SelectionHooks h = after(2);
    h.on_progress = [&](const SelectionProgress& pr) {
      CHECK(std::string(pr.stage) == "choosing");
      CHECK(pr.planned == 4);
      seen.push_back(pr.done);
      if (pr.done == 2) {
        CHECK(pr.best_pct == 85);
        CHECK(pr.best_point == 1);
      }
    };
    Selection s = select_policy(r, p, extra, 8, t.fn(), h);
    REQUIRE(s.done);
    CHECK(s.stopped == "time budget");
    CHECK(s.planned == 4);
    CHECK(s.candidates == std::vector<int>{0, 1});
    CHECK(s.chosen == 1);
    CHECK(seen == std::vector<int>{1, 2});
    CHECK(r.points.size() == 3);  // uniform-3 was not reached
    // and the refinement does not start after a cut-short choice
    refine_selection(s, r, p, 3, 3, t.fn(), h);
    CHECK(t.asked.size() == 2);
  }
  SECTION("before any measurement: nothing chosen, the reason kept") {
    Selection s = select_policy(r, p, extra, 8, t.fn(), after(0));
    CHECK_FALSE(s.done);
    CHECK(s.chosen == -1);
    CHECK(s.stopped == "time budget");
    CHECK(t.asked.empty());
  }
  SECTION("never stopped: the same choice as without hooks") {
    Selection s = select_policy(r, p, extra, 8, t.fn(), after(100));
    Table t2 = t;
    t2.asked.clear();
    SearchResult r2;
    r2.points = {point(p, a, 90, 0), point(p, b, 89, 1), point(p, c, 88, 2)};
    Selection plain = select_policy(r2, p, extra, 8, t2.fn());
    CHECK(s.stopped.empty());
    CHECK(s.candidates == plain.candidates);
    CHECK(s.accuracy == plain.accuracy);
    CHECK(s.chosen == plain.chosen);
    CHECK(r.points.size() == 4);
    CHECK(r.points[s.chosen].phase == "uniform-3");
  }
}

TEST_CASE("select: a refinement stopped mid-round keeps the best move measured", "[search][select]") {
  auto p = noise_problem();
  SearchResult r = random_points(p);
  AccuracyFn exact = [](const quant::Policy& pol) { return noise_form(to_bits(pol)); };
  Selection s = select_policy(r, p, {}, 1, exact);
  REQUIRE(s.done);
  const double start = s.accuracy[0];
  int measured = 0;
  AccuracyFn counted = [&](const quant::Policy& pol) {
    ++measured;
    return noise_form(to_bits(pol));
  };
  SelectionHooks h;
  h.stop_reason = [&]() -> std::string { return measured >= 2 ? "time budget" : ""; };
  std::vector<std::pair<int, int>> seen;  // (round, done)
  h.on_progress = [&](const SelectionProgress& pr) {
    CHECK(std::string(pr.stage) == "refining");
    CHECK(pr.rounds == 3);
    CHECK(pr.planned == 5);
    seen.emplace_back(pr.round, pr.done);
  };
  refine_selection(s, r, p, 3, 5, counted, h);
  CHECK(measured == 2);
  CHECK(s.stopped == "time budget");
  CHECK(s.refine_rounds_done == 1);
  CHECK(seen == std::vector<std::pair<int, int>>{{1, 1}, {1, 2}});
  REQUIRE(s.candidates.size() == 3);
  const double best_move = std::max(s.accuracy[1], s.accuracy[2]);
  if (best_move > start) CHECK(s.accuracy[std::find(s.candidates.begin(), s.candidates.end(), s.chosen) -
                                           s.candidates.begin()] == best_move);
  else CHECK(s.chosen == s.candidates[0]);
}

TEST_CASE("search loop: the time budget keeps back the final choice's estimate, and the ETA includes it",
          "[search][select][time]") {
  auto p = fake::fake_problem();
  SearchOptions o;
  o.algo = "random";
  o.episodes = 50;
  o.seed = 3;
  SearchHooks h;
  std::vector<double> etas;
  h.on_episode = [&](const SearchProgress& pr) {
    etas.push_back(pr.eta_s);
    CHECK(pr.reserve_s == 30.0);
  };
  h.reserve_s = [](const SearchResult&) { return 30.0; };
  SECTION("a reserve above the budget stops the loop after its first episode") {
    o.time_budget_s = 20;
    SearchResult r = run_search(o, p, h);
    CHECK(r.stop_reason == "time budget");
    CHECK(r.episodes.size() == 1);
    REQUIRE(etas.size() == 1);
    CHECK(etas[0] == Approx(30.0).margin(1e-6));  // no time left for episodes: the reserve only
  }
  SECTION("without a time budget the loop runs to the end, the ETA still counts the reserve") {
    SearchResult r = run_search(o, p, h);
    CHECK(r.stop_reason == "done");
    CHECK(r.episodes.size() == 50);
    REQUIRE(etas.size() == 50);
    for (double e : etas) CHECK(e >= 30.0);
    CHECK(etas.back() == Approx(30.0));
  }
}
