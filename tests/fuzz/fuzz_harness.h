#pragma once
// Shared by the libFuzzer targets (fuzz_*.cpp) and the regression replay test
// (test_fuzz_regressions.cpp): one function per target runs one input through
// the real parser, the way the CLI would.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace haq::fuzz {

/// What one input did.
struct Outcome {
  bool accepted = false;  ///< parsed and checked without error
  std::string error;      ///< the haq::Error's what() when rejected
};

/// The targets. Each returns the outcome for a user-level haq::Error (any kind
/// but internal, naming a file). Anything else is a bug and escapes: an
/// internal haq::Error or an error naming no file (as std::logic_error), or
/// any other exception as it is. Sanitizer reports abort the process.
Outcome run_onnx(const uint8_t* data, size_t size);
Outcome run_profile(const uint8_t* data, size_t size);
Outcome run_policy(const uint8_t* data, size_t size);
Outcome run_idx(const uint8_t* data, size_t size);
Outcome run_npy(const uint8_t* data, size_t size);
Outcome run_checkpoint(const uint8_t* data, size_t size);
Outcome run_config(const uint8_t* data, size_t size);
Outcome run_sweep(const uint8_t* data, size_t size);
Outcome run_rounding_cache(const uint8_t* data, size_t size);

/// The DDPG options of fuzz_checkpoint's agent (and of its seeds).
}  // namespace haq::fuzz
namespace haq::search {
struct DdpgOptions;
}
namespace haq::fuzz {
search::DdpgOptions fuzz_ddpg_options();

/// Runs `body`; a user-level haq::Error becomes a rejected Outcome (see above).
template <typename F>
Outcome guarded(F&& body);

/// A private scratch folder of this process (on /dev/shm when there is one:
/// the IDX/NPY targets write their input to files each run), removed at exit.
const std::filesystem::path& work_dir();

/// Writes `size` bytes to `path` (truncating).
void write_bytes(const std::filesystem::path& path, const uint8_t* data, size_t size);

/// Splits an input into two files' contents: the first 4 bytes (little
/// endian, modulo the rest's size + 1) give the length of the first part.
/// Inputs shorter than 4 bytes give two empty parts.
struct TwoParts {
  const uint8_t* first = nullptr;
  size_t first_size = 0;
  const uint8_t* second = nullptr;
  size_t second_size = 0;
};
TwoParts split_two(const uint8_t* data, size_t size);

/// Converts a haq::Error that escaped `body` into an Outcome, or rethrows as a bug.
Outcome classify_current_error();

template <typename F>
Outcome guarded(F&& body) {
  try {
    body();
    return Outcome{true, ""};
  } catch (...) {
    return classify_current_error();
  }
}

/// The libFuzzer entry: any escaping exception aborts with its message (a crash
/// libFuzzer saves); the outcome itself is not a failure.
int fuzz_entry(Outcome (*target)(const uint8_t*, size_t), const uint8_t* data, size_t size);

}  // namespace haq::fuzz

#ifndef HAQ_FUZZ_REPLAY
/// Defines LLVMFuzzerTestOneInput for one target (not in the replay test,
/// which links all targets into one binary).
#define HAQ_FUZZ_TARGET(fn)                                                  \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { \
    return ::haq::fuzz::fuzz_entry(fn, data, size);                          \
  }
#else
#define HAQ_FUZZ_TARGET(fn)
#endif
