#pragma once
/// \file
/// Strict, typed reading of JSON input files (profiles, policies, configs).
///
/// Every read names the file and the JSON pointer of the value in its error,
/// checks the type and the range, and an object rejects keys nobody asked
/// for, suggesting the closest known key:
///
/// \code
///   JsonValue root = parse_json(text, "bismo.json", ErrorKind::profile);
///   JsonObject obj = root.object();               // "/" must be an object
///   int64_t batch = obj.get("batch").as_int(1);   // /batch: an integer >= 1
///   JsonObject mem = obj.get("memory").object();  // /memory
///   double mhz = obj.get("clock_mhz").as_number_above(0.0);
///   std::string arch = obj.get("architecture").as_enum({"bit-serial", "table"});
///   if (auto d = obj.opt("description")) desc = d->as_string();
///   mem.finish();  // rejects unknown keys under /memory ...
///   obj.finish();  // ... and under /   ("did you mean \"batch\"?")
/// \endcode
///
/// Errors are haq::Error of the kind given at parse time, e.g.
/// `bismo.json: /memory/dram_bits_per_cycle: expected an integer >= 1, got -4`.

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "haq/core/error.h"

namespace haq {

class JsonObject;

/// Where a value came from: file, error kind, and its JSON pointer.
struct JsonContext {
  std::string file;
  ErrorKind kind = ErrorKind::config;
};

/// One JSON value with its place. Cheap to copy (the document is shared).
class JsonValue {
 public:
  JsonValue(std::shared_ptr<const nlohmann::json> doc, const nlohmann::json* value,
            std::string pointer, std::shared_ptr<const JsonContext> ctx);

  /// JSON pointer of this value ("/" for the root).
  const std::string& pointer() const { return pointer_; }
  const std::string& file() const { return ctx_->file; }
  /// The underlying JSON (no checks).
  const nlohmann::json& raw() const { return *value_; }

  /// An integer in [min, max]. Floats with a fractional part are rejected.
  int64_t as_int(int64_t min = std::numeric_limits<int64_t>::min(),
                 int64_t max = std::numeric_limits<int64_t>::max()) const;
  /// A finite number in [min, max].
  double as_number(double min = -std::numeric_limits<double>::infinity(),
                   double max = std::numeric_limits<double>::infinity()) const;
  /// A finite number strictly greater than `bound` (e.g. a positive frequency).
  double as_number_above(double bound) const;
  bool as_bool() const;
  /// A string; `non_empty` rejects "".
  std::string as_string(bool non_empty = false) const;
  /// A string from a fixed set (the error lists the set and suggests the closest).
  std::string as_enum(const std::vector<std::string>& allowed) const;
  /// An object, read key by key through JsonObject.
  JsonObject object() const;
  /// An array's elements; `min_size`/`max_size` bound its length.
  std::vector<JsonValue> array(size_t min_size = 0,
                               size_t max_size = std::numeric_limits<size_t>::max()) const;
  /// An array of strings.
  std::vector<std::string> as_string_array(size_t min_size = 0) const;

  /// Throws the Error of this file's kind at this value's pointer.
  [[noreturn]] void fail(const std::string& message) const;

 private:
  friend class JsonObject;
  JsonValue child(const nlohmann::json* value, std::string pointer) const {
    return JsonValue(doc_, value, std::move(pointer), ctx_);
  }
  [[noreturn]] void type_error(const std::string& expected) const;
  std::shared_ptr<const nlohmann::json> doc_;
  const nlohmann::json* value_;
  std::string pointer_;
  std::shared_ptr<const JsonContext> ctx_;
};

/// An object being read. Each get()/opt() records its key as known;
/// finish() then rejects any other key of the object.
class JsonObject {
 public:
  explicit JsonObject(const JsonValue& value);

  /// The value of a required key; "missing required key" error otherwise.
  JsonValue get(const std::string& key);
  /// The value of an optional key, or nullopt if absent.
  std::optional<JsonValue> opt(const std::string& key);
  /// True if the key is present (does not mark it known).
  bool has(const std::string& key) const;
  /// Marks a key as known without reading it (accepted and ignored).
  void allow(const std::string& key);
  /// Rejects every key not read or allowed, with a did-you-mean suggestion.
  void finish() const;

  const JsonValue& value() const { return value_; }
  const std::string& pointer() const { return value_.pointer(); }
  /// Pointer of a member key (escaped per RFC 6901).
  std::string pointer_of(const std::string& key) const;
  [[noreturn]] void fail(const std::string& message) const { value_.fail(message); }
  /// Throws at the pointer of a member key.
  [[noreturn]] void fail_at(const std::string& key, const std::string& message) const;

 private:
  JsonValue value_;
  std::set<std::string> known_;
};

/// Parses JSON text into a plain document, for readers that do not use
/// JsonValue. Syntax errors, numbers out of range and nesting deeper than 256
/// levels are Error(kind) naming the file, line and column.
nlohmann::json parse_json_document(const std::string& text, const std::string& file, ErrorKind kind);

/// Parses JSON text; syntax errors name the file, line and column.
JsonValue parse_json(const std::string& text, const std::string& file, ErrorKind kind);

/// Reads and parses a file (Error(io) if unreadable).
JsonValue read_json_file(const std::string& path, ErrorKind kind);

/// Levenshtein edit distance (for did-you-mean suggestions).
size_t edit_distance(const std::string& a, const std::string& b);

/// The candidate closest to `word` if it is close enough to be a likely typo
/// (distance <= max(1, len/3)), else "".
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace haq
