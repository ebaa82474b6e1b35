#pragma once
/// \file
/// The one error family of haq. The library throws haq::Error; only apps/
/// decides exit codes (bad input -> 2, internal -> 3).

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace haq {

/// What went wrong, from the user's point of view.
enum class ErrorKind {
  usage,        ///< bad command line or option value
  io,           ///< a file cannot be read or written
  model,        ///< malformed ONNX model
  unsupported,  ///< a valid model that uses something haq does not support
  profile,      ///< invalid hardware profile
  policy,       ///< invalid policy file, or a policy that does not match the model
  data,         ///< invalid dataset
  config,       ///< invalid search or sweep config
  internal,     ///< a bug in haq (exit 3)
};

/// Name of an ErrorKind, for logs and JSON.
const char* to_string(ErrorKind kind);

/// An error that names the file, the place within it and what was expected.
/// what() is "FILE: WHERE: WHAT" with empty parts left out.
class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string file, std::string where, std::string message);

  ErrorKind kind() const { return kind_; }
  const std::string& file() const { return file_; }
  const std::string& where() const { return where_; }
  const std::string& message() const { return message_; }
  /// Exit code the CLI uses for this error: 3 for internal, else 2.
  int exit_code() const { return kind_ == ErrorKind::internal ? 3 : 2; }

  /// A copy with an outer place prepended to `where` (context gained while unwinding).
  Error with_context(const std::string& outer_where) const;
  /// A copy with the file set, if it was empty.
  Error with_file(const std::string& file) const;

 private:
  ErrorKind kind_;
  std::string file_, where_, message_;
};

/// Throws haq::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(ErrorKind kind, const std::string& file, const std::string& where,
                       fmt::format_string<Args...> format, Args&&... args) {
  throw Error(kind, file, where, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace haq

/// Invariant of haq's own code (not a user error): throws an internal Error.
#define HAQ_ASSERT(cond)                                                               \
  do {                                                                                 \
    if (!(cond))                                                                       \
      throw ::haq::Error(::haq::ErrorKind::internal, __FILE__, std::to_string(__LINE__), \
                         "assertion failed: " #cond);                                  \
  } while (0)
