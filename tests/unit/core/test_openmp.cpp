#include <catch2/catch.hpp>

#include "haq/core/openmp.h"

TEST_CASE("openmp: passive waiting unless the user chose a policy", "[core][openmp]") {
  CHECK(haq::omp_wait_policy_to_set(nullptr) == std::optional<std::string>("passive"));
  CHECK(haq::omp_wait_policy_to_set("") == std::optional<std::string>("passive"));
  CHECK_FALSE(haq::omp_wait_policy_to_set("active").has_value());
  CHECK_FALSE(haq::omp_wait_policy_to_set("passive").has_value());
  CHECK_FALSE(haq::omp_wait_policy_to_set("ACTIVE").has_value());
}
