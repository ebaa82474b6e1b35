#include <catch2/catch.hpp>

#include <sstream>

#include "fake_problem.h"
#include "haq/search/agent.h"

using namespace haq;
using namespace haq::search;

namespace {
// Small networks keep the test fast; the algorithm is the same.
DdpgOptions small_ddpg() {
  DdpgOptions o;
  o.hidden = 64;
  return o;
}

// Best feasible accuracy after `episodes` asks/tells.
std::vector<double> run(Agent& agent, const Environment& env, const fake::FakeAccuracy& acc,
                        int episodes, double* best_out) {
  std::vector<double> rewards;
  double best = -1e9;
  for (int e = 0; e < episodes; ++e) {
    auto p = agent.ask(e, episodes - e);
    if (!p) break;
    const bool feasible = env.feasible(p->bits);
    if (p->phase != "sensitivity" && p->phase != "greedy-walk") CHECK(feasible);
    double a = acc(to_policy(env.layers(), p->bits));
    double r = Environment::reward(a, 90);
    agent.tell(*p, a, r);
    rewards.push_back(r);
    if (feasible) best = std::max(best, a);
  }
  *best_out = best;
  return rewards;
}

double mean(const std::vector<double>& v, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += v[i];
  return s / static_cast<double>(to - from);
}
}  // namespace

TEST_CASE("agents: ddpg learns a synthetic problem and beats random", "[search][agents]") {
  auto p = fake::fake_problem();
  Environment env(p.layers, p.costs, p.budgets, p.w_range, p.a_range);
  auto acc = *p.accuracy.target<fake::FakeAccuracy>();
  const int episodes = 120;
  double best_ddpg = 0, best_random = 0;
  auto ddpg = make_agent("ddpg", env, 0, small_ddpg());
  auto r_ddpg = run(*ddpg, env, acc, episodes, &best_ddpg);
  auto rnd = make_agent("random", env, 0);
  auto r_rand = run(*rnd, env, acc, episodes, &best_random);
  REQUIRE(r_ddpg.size() == episodes);
  // the reward of the last episodes is well above the warm-up (random) episodes
  double warm = mean(r_ddpg, 0, 20), late = mean(r_ddpg, episodes - 20, episodes);
  INFO("warm-up mean " << warm << ", last-20 mean " << late << ", random mean " << mean(r_rand, 0, episodes));
  CHECK(late > warm + 0.3);
  CHECK(late > mean(r_rand, 0, episodes) + 0.3);
  INFO("best ddpg " << best_ddpg << ", best random " << best_random);
  CHECK(best_ddpg > best_random);
}

TEST_CASE("agents: ddpg is deterministic and its checkpoint continues exactly", "[search][agents]") {
  auto p = fake::fake_problem();
  Environment env(p.layers, p.costs, p.budgets, p.w_range, p.a_range);
  auto acc = *p.accuracy.target<fake::FakeAccuracy>();
  auto o = small_ddpg();
  o.warmup = 3;
  auto a = make_agent("ddpg", env, 5, o);
  double best = 0;
  run(*a, env, acc, 8, &best);
  std::stringstream state;
  a->save(state);
  auto b = make_agent("ddpg", env, 5, o);
  b->load(state);
  for (int e = 8; e < 14; ++e) {
    auto pa = a->ask(e, 100), pb = b->ask(e, 100);
    REQUIRE(pa->actions == pb->actions);
    double x = acc(to_policy(env.layers(), pa->bits));
    a->tell(*pa, x, Environment::reward(x, 90));
    b->tell(*pb, x, Environment::reward(x, 90));
  }
  // another seed gives other actions
  auto c = make_agent("ddpg", env, 6, o);
  CHECK(c->ask(0, 100)->actions != make_agent("ddpg", env, 5, o)->ask(0, 100)->actions);
}

TEST_CASE("agents: knapsack finds the optimum of a separable problem", "[search][agents]") {
  // 3 layers, bits 2..4: brute force over 9^3 policies
  SearchProblem p;
  p.layers = fake::fake_layers(3);
  p.costs = fake::fake_costs({1e6, 2e6, 3e6}, {10, 10, 10});
  p.w_range = p.a_range = {2, 4};
  p.budgets = resolve_budgets(parse_budgets("bops<=50M"), p.costs, p.w_range, p.a_range);
  fake::FakeAccuracy acc{{0.5, 0.2, 0.1}, {0.3, 0.4, 0.05}};
  Environment env(p.layers, p.costs, p.budgets, p.w_range, p.a_range);
  double best_brute = -1e9;
  BitsVector arg;
  for (int i = 0; i < 729; ++i) {
    BitsVector bits(3);
    int k = i;
    for (auto& b : bits) {
      b.w = 2 + k % 3;
      k /= 3;
      b.a = 2 + k % 3;
      k /= 3;
    }
    if (!env.feasible(bits)) continue;
    double a = acc(to_policy(p.layers, bits));
    if (a > best_brute) {
      best_brute = a;
      arg = bits;
    }
  }
  auto agent = make_agent("knapsack", env, 0);
  double best = 0;
  run(*agent, env, acc, 200, &best);
  // the accuracy is exactly separable, so the sensitivity estimate is exact
  CHECK(best == Approx(best_brute));

  Sensitivity s;
  s.reference_pct = 90;
  s.loss_w.assign(3, {});
  s.loss_a.assign(3, {});
  for (size_t l = 0; l < 3; ++l)
    for (int b = 2; b <= 4; ++b) {
      s.loss_w[l][b] = acc.sw[l] * (8 - b) * (8 - b) - acc.sw[l] * 16;
      s.loss_a[l][b] = acc.sa[l] * (8 - b) * (8 - b) - acc.sa[l] * 16;
    }
  auto sol = knapsack_solve(env, s);
  REQUIRE(sol);
  CHECK(acc(to_policy(p.layers, *sol)) == Approx(best_brute));
}

TEST_CASE("agents: greedy walks to a feasible policy, random is feasible", "[search][agents]") {
  auto p = fake::fake_problem("latency<=0.3x,size<=0.6x");
  Environment env(p.layers, p.costs, p.budgets, p.w_range, p.a_range);
  auto acc = *p.accuracy.target<fake::FakeAccuracy>();
  auto greedy = make_agent("greedy", env, 0);
  double best = 0;
  auto rewards = run(*greedy, env, acc, 1000, &best);
  // probes: 1 + 5 layers x (6 + 6) levels, then the walk's points
  CHECK(rewards.size() > 61);
  CHECK(rewards.size() < 1000);  // it finishes on its own
  Sensitivity s;  // exact losses of the fake accuracy
  s.loss_w.assign(5, {});
  s.loss_a.assign(5, {});
  for (size_t l = 0; l < 5; ++l)
    for (int b = 0; b <= 8; ++b) {
      s.loss_w[l][b] = acc.sw[l] * (8 - b) * (8 - b);
      s.loss_a[l][b] = acc.sa[l] * (8 - b) * (8 - b);
    }
  auto walk = greedy_walk(env, s);
  REQUIRE(walk.size() > 1);
  CHECK(walk.front() == BitsVector(5, Bits{8, 8}));
  CHECK(env.feasible(walk.back()));
  for (size_t i = 0; i + 1 < walk.size(); ++i) CHECK_FALSE(env.feasible(walk[i]));
  // the walk's end is measured by the agent, and no feasible probe is better than it
  CHECK(best >= acc(to_policy(p.layers, walk.back())) - 1e-9);

  auto rnd = make_agent("random", env, 3);
  double best_r = 0;
  run(*rnd, env, acc, 30, &best_r);  // run() checks feasibility of each
  CHECK_THROWS_WITH(make_agent("bayes", env, 0), Catch::Contains("unknown algorithm 'bayes'"));
}
