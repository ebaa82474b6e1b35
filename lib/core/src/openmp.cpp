#include "haq/core/openmp.h"

#include <unistd.h>

#include <cstdlib>

namespace haq {

std::optional<std::string> omp_wait_policy_to_set(const char* current) {
  if (current == nullptr || *current == '\0') return std::string("passive");
  return std::nullopt;
}

void ensure_passive_omp_wait(char** argv) {
  const auto value = omp_wait_policy_to_set(std::getenv("OMP_WAIT_POLICY"));
  if (!value || argv == nullptr || argv[0] == nullptr) return;
  if (::setenv("OMP_WAIT_POLICY", value->c_str(), 1) != 0) return;
  // Set now, so the re-executed process does not come back here; if exec
  // fails (no /proc), haq goes on with the runtime's default waiting.
  ::execv("/proc/self/exe", argv);
}

}  // namespace haq
