#include <catch2/catch.hpp>

#include "run_haq.h"

using haq::test::run_haq;

TEST_CASE("haq --version prints the version") {
  auto r = run_haq({"--version"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.rfind("haq 0.", 0) == 0);
}

TEST_CASE("haq --help lists the subcommands") {
  auto r = run_haq({"--help"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("inspect") != std::string::npos);
}

TEST_CASE("an unknown subcommand or option is a usage error, exit 2") {
  CHECK(run_haq({"frobnicate"}).exit_code == 2);
  CHECK(run_haq({"inspect", "--no-such-option"}).exit_code == 2);
  CHECK(run_haq({}).exit_code == 2);
}
