#pragma once
/// \file
/// How haq's OpenMP threads (oneDNN's, libgomp) wait between parallel
/// regions. By default libgomp spins for a while at every barrier; on a
/// loaded machine the spinning threads take the cores the working threads
/// need, and a measurement ran up to 4x slower (docs/benchmarks.md). haq
/// runs with OMP_WAIT_POLICY=passive unless the user set the variable.
///
/// libgomp reads its environment in a constructor, when it is loaded: before
/// main(). A setenv() in main() is too late (measured: docs/benchmarks.md,
/// "OpenMP waiting"), so the process re-executes itself once with the
/// variable set.

#include <optional>
#include <string>

namespace haq {

/// The OMP_WAIT_POLICY value haq should run with, given the current value
/// (nullptr: unset): "passive" when unset or empty, nullopt (leave it) when
/// the user chose one.
std::optional<std::string> omp_wait_policy_to_set(const char* current);

/// Call first in main(). If OMP_WAIT_POLICY must be set, sets it and
/// re-executes /proc/self/exe with the same arguments (same pid), so that
/// the OpenMP runtime starts with it. Returns only if nothing was to be done
/// or the re-execution failed (then haq runs with the runtime's default).
void ensure_passive_omp_wait(char** argv);

}  // namespace haq
