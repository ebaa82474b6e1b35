#include <catch2/catch.hpp>

#include "fake_problem.h"
#include "haq/search/environment.h"

using namespace haq;
using namespace haq::search;

TEST_CASE("environment: action -> bits, equal-width bins and the edges", "[search][env]") {
  BitRange r{2, 8};
  CHECK(Environment::action_to_bits(0.0, r) == 2);
  CHECK(Environment::action_to_bits(1.0, r) == 8);
  // bits = round(1.5 + 7a): the bin edges are at k/7
  CHECK(Environment::action_to_bits(1.0 / 7 - 1e-6, r) == 2);
  CHECK(Environment::action_to_bits(1.0 / 7 + 1e-6, r) == 3);
  CHECK(Environment::action_to_bits(0.5, r) == 5);
  CHECK(Environment::action_to_bits(6.0 / 7 + 1e-6, r) == 8);
  CHECK(Environment::action_to_bits(6.0 / 7 - 1e-6, r) == 7);
  // out-of-range actions are clamped
  CHECK(Environment::action_to_bits(-0.3, r) == 2);
  CHECK(Environment::action_to_bits(1.7, r) == 8);
  BitRange full{1, 8};
  CHECK(Environment::action_to_bits(0.0, full) == 1);
  CHECK(Environment::action_to_bits(1.0, full) == 8);
  BitRange one{4, 4};
  CHECK(Environment::action_to_bits(0.0, one) == 4);
  CHECK(Environment::action_to_bits(1.0, one) == 4);
  for (int b = 2; b <= 8; ++b)
    CHECK(Environment::action_to_bits(Environment::bits_to_action(b, r), r) == b);
}

TEST_CASE("environment: state columns min-max normalised, flag and previous action", "[search][env]") {
  auto p = fake::fake_problem();
  Environment env(p.layers, p.costs, p.budgets, p.w_range, p.a_range);
  REQUIRE(env.num_decisions() == 10);
  // layer 0: index 0, c_in 8 (min), in_hw 64 (max); layer 4: index 1, c_in 40 (max)
  State s0 = env.state(0, 0.f);
  CHECK(s0[0] == 0.f);
  CHECK(s0[1] == 0.f);           // not depthwise
  CHECK(s0[2] == 0.f);           // c_in min
  CHECK(s0[5] == 0.f);           // kernel constant 3 -> 0
  CHECK(s0[7] == 1.f);           // in_hw max
  CHECK(s0[8] == 0.f);           // weights
  CHECK(s0[9] == 0.f);
  State s3 = env.state(3, 0.25f);  // layer 1, activations
  CHECK(s3[0] == Approx(0.25));
  CHECK(s3[1] == 1.f);           // the depthwise one
  CHECK(s3[2] == Approx(0.25));  // c_in 16 of 8..40
  CHECK(s3[4] == 1.f);           // stride 2 of 1..2
  CHECK(s3[8] == 1.f);
  CHECK(s3[9] == 0.25f);
  // the w/a flag is right for every layer (the reference inverted it after layer 0)
  for (size_t t = 0; t < env.num_decisions(); ++t) CHECK(env.state(t, 0.f)[8] == (t % 2 ? 1.f : 0.f));
  State s9 = env.state(9, 0.5f);
  CHECK(s9[0] == 1.f);
  CHECK(s9[2] == 1.f);
  for (float v : s9) {
    CHECK(v >= 0.f);
    CHECK(v <= 1.f);
  }
  // states are a pure function of (t, previous action): nothing carries over between episodes
  CHECK(env.state(4, 0.f) == Environment(p.layers, p.costs, p.budgets, p.w_range, p.a_range).state(4, 0.f));
}

TEST_CASE("environment: budget enforcement lowers from the last layer, a then w", "[search][env]") {
  // three equal layers: latency ~ w * a; budget needs a few steps
  auto costs = fake::fake_costs({1e6, 1e6, 1e6}, {10, 10, 10});
  BitRange r{2, 8};
  auto layers = fake::fake_layers(3);
  // all-8 = 3 * 64 = 192 units; 186/192: one step (L2 a 8->7 gives 56: 184) is enough
  auto b1 = resolve_budgets(parse_budgets("bops<=186M"), costs, r, r);
  Environment env1(layers, costs, b1, r, r);
  BitsVector all8(3, Bits{8, 8});
  CHECK(env1.enforce_budgets(all8) == BitsVector{{8, 8}, {8, 8}, {8, 7}});
  // 180: L2 a->7 (184), L2 w->7 (177)
  auto b2 = resolve_budgets(parse_budgets("bops<=180M"), costs, r, r);
  Environment env2(layers, costs, b2, r, r);
  CHECK(env2.enforce_budgets(all8) == BitsVector{{8, 8}, {8, 8}, {7, 7}});
  // 150: one sweep takes every layer to 7/7 (147)
  auto b3 = resolve_budgets(parse_budgets("bops<=150M"), costs, r, r);
  Environment env3(layers, costs, b3, r, r);
  CHECK(env3.enforce_budgets(all8) == BitsVector{{7, 7}, {7, 7}, {7, 7}});
  // 140: a second sweep starts again from the last layer: L2 a->6 (49+49+42=140)
  auto b4 = resolve_budgets(parse_budgets("bops<=140M"), costs, r, r);
  Environment env4(layers, costs, b4, r, r);
  CHECK(env4.enforce_budgets(all8) == BitsVector{{7, 7}, {7, 7}, {7, 6}});
  // layers at the minimum are skipped
  BitsVector low{{8, 8}, {8, 8}, {2, 2}};
  CHECK(env2.enforce_budgets(low) == low);  // 64+64+4 = 132 fits already
  auto b5 = resolve_budgets(parse_budgets("bops<=120M"), costs, r, r);
  Environment env5(layers, costs, b5, r, r);
  CHECK(env5.enforce_budgets(low) == BitsVector{{8, 8}, {7, 7}, {2, 2}});  // 64+49+4 = 117
  // a feasible policy is left alone
  CHECK(env5.enforce_budgets(BitsVector(3, Bits{4, 4})) == BitsVector(3, Bits{4, 4}));
}

TEST_CASE("environment: reward and actions_to_bits", "[search][env]") {
  CHECK(Environment::reward(88.5, 90.0) == Approx(-0.15));
  CHECK(Environment::reward(90.0, 90.0) == 0.0);
  auto p = fake::fake_problem();
  Environment env(p.layers, p.costs, p.budgets, p.w_range, p.a_range);
  std::vector<float> actions{0.f, 1.f, 0.5f, 0.5f, 1.f, 1.f, 0.f, 0.f, 0.2f, 0.9f};
  CHECK(env.actions_to_bits(actions) == BitsVector{{2, 8}, {5, 5}, {8, 8}, {2, 2}, {3, 8}});
}
