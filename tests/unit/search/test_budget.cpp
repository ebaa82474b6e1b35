#include <catch2/catch.hpp>

#include "fake_problem.h"
#include "haq/core/error.h"
#include "haq/search/budget.h"

using namespace haq;
using namespace haq::search;

TEST_CASE("budgets: relative and absolute with units", "[search][budget]") {
  auto b = parse_budgets("latency<=0.5x");
  REQUIRE(b.size() == 1);
  CHECK(b[0].metric == Metric::latency);
  CHECK(b[0].relative);
  CHECK(b[0].value == 0.5);

  CHECK(parse_budgets("latency<=2ms")[0].value == Approx(2e-3));
  CHECK(parse_budgets("latency<=150us")[0].value == Approx(150e-6));
  CHECK(parse_budgets("latency<=1s")[0].value == 1.0);
  CHECK(parse_budgets("energy<=1.5mJ")[0].value == Approx(1.5e9));
  CHECK(parse_budgets("energy<=3uJ")[0].value == Approx(3e6));
  CHECK(parse_budgets("energy<=2J")[0].value == Approx(2e12));
  CHECK(parse_budgets("energy<=7pJ")[0].value == Approx(7));
  CHECK(parse_budgets("size<=0.25MB")[0].value == Approx(2e6));
  CHECK(parse_budgets("size<=1KiB")[0].value == Approx(8192));
  CHECK(parse_budgets("size<=1MiB")[0].value == Approx(8.0 * 1048576));
  CHECK(parse_budgets("size<=100b")[0].value == 100);
  CHECK(parse_budgets("size<=3B")[0].value == 24);
  CHECK(parse_budgets("bops<=300M")[0].value == Approx(3e8));
  CHECK(parse_budgets("bops<=2G")[0].value == Approx(2e9));
  CHECK(parse_budgets("bops<=5000")[0].value == 5000);
  CHECK_FALSE(parse_budgets("size<=1MB")[0].relative);

  auto two = parse_budgets("latency<=0.5x, energy<=0.6x");
  REQUIRE(two.size() == 2);
  CHECK(two[1].metric == Metric::energy);
  CHECK(two[1].value == 0.6);
  CHECK(two[1].text == "energy<=0.6x");
}

TEST_CASE("budgets: malformed text is a usage error saying why", "[search][budget]") {
  auto msg = [](const std::string& text) {
    try {
      parse_budgets(text);
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::usage);
      CHECK(e.where() == "--budget");
      return e.message();
    }
    return std::string("no error");
  };
  CHECK_THAT(msg("latency<0.5x"), Catch::Contains("only comparison is '<='"));
  CHECK_THAT(msg("speed<=0.5x"), Catch::Contains("unknown metric 'speed'"));
  CHECK_THAT(msg("latency<=2"), Catch::Contains("missing unit"));
  CHECK_THAT(msg("latency<=2kg"), Catch::Contains("unknown latency unit 'kg'"));
  CHECK_THAT(msg("latency<=-1x"), Catch::Contains("positive"));
  CHECK_THAT(msg("latency<=x"), Catch::Contains("does not start with a number"));
  CHECK_THAT(msg(""), Catch::Contains("empty budget"));
  CHECK_THAT(msg("latency<=0.5x,"), Catch::Contains("empty budget"));
  CHECK_THAT(msg("energy<=2mj"), Catch::Contains("unknown energy unit 'mj'"));
}

TEST_CASE("budgets: resolved against all-8-bit, infeasible ones rejected", "[search][budget]") {
  auto costs = fake::fake_costs({1e6, 3e6}, {10, 30});
  BitRange r{2, 8};
  // all-8-bit latency = (1e6 + 3e6) * 64 * 1e-9 = 0.256 s; all-2-bit = 4e6 * 4e-9 = 0.016 s
  auto b = resolve_budgets(parse_budgets("latency<=0.5x"), costs, r, r);
  REQUIRE(b.size() == 1);
  CHECK(b[0].reference == Approx(0.256));
  CHECK(b[0].limit == Approx(0.128));
  auto abs = resolve_budgets(parse_budgets("latency<=20ms"), costs, r, r);
  CHECK(abs[0].limit == Approx(0.02));
  // exactly the minimum (0.0625x) is reachable
  CHECK_NOTHROW(resolve_budgets(parse_budgets("latency<=0.0625x"), costs, r, r));
  try {
    resolve_budgets(parse_budgets("latency<=0.05x"), costs, r, r);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::usage);
    CHECK_THAT(e.message(), Catch::Contains("cannot be met"));
    CHECK_THAT(e.message(), Catch::Contains("16 ms"));
    CHECK_THAT(e.message(), Catch::Contains("0.0625x"));
  }
  // size counts weight bits only: all-2 = 40*2 = 80 bits = 10 B
  CHECK_THROWS_WITH(resolve_budgets(parse_budgets("size<=9B"), costs, r, r),
                    Catch::Contains("10 B"));
  // the range matters: with 4-bit minimum, 0.25x latency is the floor
  BitRange r4{4, 8};
  CHECK_NOTHROW(resolve_budgets(parse_budgets("latency<=0.25x"), costs, r4, r4));
  CHECK_THROWS(resolve_budgets(parse_budgets("latency<=0.2x"), costs, r4, r4));
  CHECK_THROWS_WITH(resolve_budgets(parse_budgets("latency<=0.5x,latency<=0.4x"), costs, r, r),
                    Catch::Contains("already given"));
}

TEST_CASE("budgets: within_budgets checks every budget", "[search][budget]") {
  auto costs = fake::fake_costs({1e6}, {10});
  BitRange r{2, 8};
  // latency ~ w * a, size ~ w
  auto b = resolve_budgets(parse_budgets("latency<=0.3x,size<=0.5x"), costs, r, r);
  CHECK(within_budgets(costs.uniform(4, 4), b));       // latency 0.25x, size 0.5x
  CHECK(within_budgets(costs.uniform(2, 8), b));       // latency 0.25x, size 0.25x
  CHECK_FALSE(within_budgets(costs.uniform(5, 3), b)); // size 0.625x
  CHECK_FALSE(within_budgets(costs.uniform(4, 5), b)); // latency 0.3125x
}
