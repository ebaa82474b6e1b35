#include "haq/core/json_reader.h"

#include <algorithm>
#include <cmath>

#include "haq/core/files.h"

namespace haq {

namespace {

std::string escape_pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

std::string join_pointer(const std::string& parent, const std::string& token) {
  return (parent == "/" ? std::string() : parent) + "/" + token;
}

std::string describe_int_range(int64_t min, int64_t max) {
  constexpr int64_t lo = std::numeric_limits<int64_t>::min();
  constexpr int64_t hi = std::numeric_limits<int64_t>::max();
  if (min == lo && max == hi) return "an integer";
  if (max == hi) {
    if (min == 1) return "a positive integer";
    if (min == 0) return "a non-negative integer";
    return fmt::format("an integer >= {}", min);
  }
  if (min == lo) return fmt::format("an integer <= {}", max);
  return fmt::format("an integer in {}..{}", min, max);
}

std::string describe_number_range(double min, double max) {
  bool has_min = std::isfinite(min), has_max = std::isfinite(max);
  if (!has_min && !has_max) return "a number";
  if (!has_max) return min == 0.0 ? "a non-negative number" : fmt::format("a number >= {}", min);
  if (!has_min) return fmt::format("a number <= {}", max);
  return fmt::format("a number in [{}, {}]", min, max);
}

// Short rendering of a value for "got ..." (long arrays/objects are elided).
std::string show(const nlohmann::json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

}  // namespace

JsonValue::JsonValue(std::shared_ptr<const nlohmann::json> doc, const nlohmann::json* value,
                     std::string pointer, std::shared_ptr<const JsonContext> ctx)
    : doc_(std::move(doc)), value_(value), pointer_(std::move(pointer)), ctx_(std::move(ctx)) {}

void JsonValue::fail(const std::string& message) const {
  throw Error(ctx_->kind, ctx_->file, pointer_, message);
}

void JsonValue::type_error(const std::string& expected) const {
  fail(fmt::format("expected {}, got {}", expected, show(*value_)));
}

int64_t JsonValue::as_int(int64_t min, int64_t max) const {
  const auto& v = *value_;
  int64_t x = 0;
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      type_error(describe_int_range(min, max));
    x = static_cast<int64_t>(u);
  } else if (v.is_number_integer()) {
    x = v.get<int64_t>();
  } else if (v.is_number_float()) {
    // 4.0 is accepted as 4 (some writers emit floats); 4.5 is not.
    double d = v.get<double>();
    if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) > 9.0e15)
      type_error(describe_int_range(min, max));
    x = static_cast<int64_t>(d);
  } else {
    type_error(describe_int_range(min, max));
  }
  if (x < min || x > max) type_error(describe_int_range(min, max));
  return x;
}

double JsonValue::as_number(double min, double max) const {
  if (!value_->is_number()) type_error(describe_number_range(min, max));
  double d = value_->get<double>();
  if (!std::isfinite(d) || d < min || d > max) type_error(describe_number_range(min, max));
  return d;
}

double JsonValue::as_number_above(double bound) const {
  std::string what = bound == 0.0 ? "a positive number" : fmt::format("a number > {}", bound);
  if (!value_->is_number()) type_error(what);
  double d = value_->get<double>();
  if (!std::isfinite(d) || !(d > bound)) type_error(what);
  return d;
}

bool JsonValue::as_bool() const {
  if (!value_->is_boolean()) type_error("true or false");
  return value_->get<bool>();
}

std::string JsonValue::as_string(bool non_empty) const {
  if (!value_->is_string()) type_error(non_empty ? "a non-empty string" : "a string");
  std::string s = value_->get<std::string>();
  if (non_empty && s.empty()) type_error("a non-empty string");
  return s;
}

std::string JsonValue::as_enum(const std::vector<std::string>& allowed) const {
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + ("\"" + a + "\"");
  if (!value_->is_string()) type_error("one of " + list);
  std::string s = value_->get<std::string>();
  if (std::find(allowed.begin(), allowed.end(), s) != allowed.end()) return s;
  std::string near = closest_match(s, allowed);
  fail(fmt::format("expected one of {}, got \"{}\"{}", list, s,
                   near.empty() ? "" : " (did you mean \"" + near + "\"?)"));
}

JsonObject JsonValue::object() const {
  if (!value_->is_object()) type_error("an object");
  return JsonObject(*this);
}

std::vector<JsonValue> JsonValue::array(size_t min_size, size_t max_size) const {
  if (!value_->is_array()) type_error("an array");
  size_t n = value_->size();
  if (n < min_size || n > max_size) {
    std::string want = max_size == std::numeric_limits<size_t>::max()
                           ? fmt::format("at least {}", min_size)
                       : min_size == max_size ? fmt::format("exactly {}", min_size)
                                              : fmt::format("{} to {}", min_size, max_size);
    fail(fmt::format("expected an array of {} elements, got {}", want, n));
  }
  std::vector<JsonValue> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i)
    out.emplace_back(doc_, &(*value_)[i], join_pointer(pointer_, std::to_string(i)), ctx_);
  return out;
}

std::vector<std::string> JsonValue::as_string_array(size_t min_size) const {
  std::vector<std::string> out;
  for (const auto& e : array(min_size)) out.push_back(e.as_string());
  return out;
}

JsonObject::JsonObject(const JsonValue& value) : value_(value) {}

std::string JsonObject::pointer_of(const std::string& key) const {
  return join_pointer(value_.pointer(), escape_pointer_token(key));
}

bool JsonObject::has(const std::string& key) const { return value_.raw().contains(key); }

void JsonObject::allow(const std::string& key) { known_.insert(key); }

JsonValue JsonObject::get(const std::string& key) {
  known_.insert(key);
  auto it = value_.raw().find(key);
  if (it == value_.raw().end()) {
    // A misspelt key is the likely cause: report it rather than the absence.
    for (auto jt = value_.raw().begin(); jt != value_.raw().end(); ++jt)
      if (!known_.count(jt.key()) && closest_match(jt.key(), {key}) == key)
        fail_at(jt.key(), "unknown key \"" + jt.key() + "\" (did you mean \"" + key + "\"?)");
    fail_at(key, "missing required key \"" + key + "\"");
  }
  return value_.child(&*it, pointer_of(key));
}

std::optional<JsonValue> JsonObject::opt(const std::string& key) {
  known_.insert(key);
  if (!has(key)) return std::nullopt;
  return get(key);
}

void JsonObject::fail_at(const std::string& key, const std::string& message) const {
  throw Error(value_.ctx_->kind, value_.ctx_->file, pointer_of(key), message);
}

void JsonObject::finish() const {
  std::vector<std::string> known(known_.begin(), known_.end());
  for (auto it = value_.raw().begin(); it != value_.raw().end(); ++it) {
    if (known_.count(it.key())) continue;
    std::string near = closest_match(it.key(), known);
    std::string hint;
    if (!near.empty()) {
      hint = " (did you mean \"" + near + "\"?)";
    } else if (!known.empty()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      hint = " (known keys: " + list + ")";
    }
    fail_at(it.key(), "unknown key \"" + it.key() + "\"" + hint);
  }
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::numeric_limits<size_t>::max();
  for (const auto& c : candidates) {  // first of equal distance wins: deterministic
    size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  size_t limit = std::max<size_t>(1, std::max(word.size(), best.size()) / 3);
  return best_d <= limit ? best : std::string();
}

namespace {

// "line L column C" of byte offset `byte` in `text`, for people.
std::string line_column(const std::string& text, size_t byte) {
  byte = std::min(byte, text.size());
  size_t line = 1, col = 1;
  for (size_t i = 0; i < byte; ++i) {
    if (text[i] == '\n') ++line, col = 1;
    else ++col;
  }
  return fmt::format("line {} column {}", line, col);
}

// nlohmann's parser is iterative, but dump() and every reader that walks the
// document recurse: refuse absurd nesting before parsing, so that a hostile
// file is an error rather than a stack overflow.
constexpr int kMaxJsonDepth = 256;

void check_json_depth(const std::string& text, const std::string& file, ErrorKind kind) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        throw Error(kind, file, line_column(text, i),
                    fmt::format("nested deeper than {} levels", kMaxJsonDepth));
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

// nlohmann keeps the last of two equal keys, other readers the first: a file
// with both means two different things to two tools, so it is refused with
// the pointer of the second. The parser's callback sees every key; a stack
// of the open objects and arrays gives each one its place.
class DuplicateKeyCheck {
 public:
  DuplicateKeyCheck(const std::string& file, ErrorKind kind) : file_(file), kind_(kind) {}

  bool operator()(int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    switch (event) {
      case E::object_start: frames_.push_back(Frame{true, {}, {}, 0}); break;
      case E::array_start: frames_.push_back(Frame{false, {}, {}, 0}); break;
      case E::key: {
        Frame& f = frames_.back();
        const std::string& key = parsed.get_ref<const std::string&>();
        f.token = escape_pointer_token(key);
        if (!f.keys.insert(key).second)
          throw Error(kind_, file_, pointer(), fmt::format("duplicate key \"{}\"", key));
        break;
      }
      case E::object_end:
      case E::array_end:
        frames_.pop_back();
        next_element();
        break;
      case E::value: next_element(); break;
    }
    return true;
  }

 private:
  struct Frame {
    bool object;
    std::set<std::string> keys;  // of an object
    std::string token;           // of an object: its current key, escaped
    size_t index;                // of an array: the current element
  };
  // A value ended: in an array, the next one is the next index.
  void next_element() {
    if (!frames_.empty() && !frames_.back().object) ++frames_.back().index;
  }
  std::string pointer() const {
    std::string p;
    for (const Frame& f : frames_) p += "/" + (f.object ? f.token : std::to_string(f.index));
    return p;
  }
  const std::string& file_;
  ErrorKind kind_;
  std::vector<Frame> frames_;
};

}  // namespace

nlohmann::json parse_json_document(const std::string& text, const std::string& file, ErrorKind kind) {
  check_json_depth(text, file, kind);
  try {
    return nlohmann::json::parse(text, DuplicateKeyCheck(file, kind));
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(kind, file, line_column(text, e.byte == 0 ? 0 : e.byte - 1), "not valid JSON");
  } catch (const nlohmann::json::exception& e) {
    // Number overflow (1e999) is out_of_range, not a parse_error; it quotes
    // the token, which locates it.
    std::string what = e.what(), where;
    size_t q = what.find("parsing '");
    if (q != std::string::npos) {
      std::string token = what.substr(q + 9, what.find('\'', q + 9) - (q + 9));
      size_t at = token.empty() ? std::string::npos : text.find(token);
      if (at != std::string::npos) where = line_column(text, at);
      throw Error(kind, file, where, fmt::format("number {} is out of range", token));
    }
    throw Error(kind, file, where, fmt::format("not valid JSON ({})", what));
  }
}

JsonValue parse_json(const std::string& text, const std::string& file, ErrorKind kind) {
  auto ctx = std::make_shared<JsonContext>(JsonContext{file, kind});
  auto doc = std::make_shared<nlohmann::json>(parse_json_document(text, file, kind));
  const nlohmann::json* root = doc.get();
  return JsonValue(std::move(doc), root, "/", std::move(ctx));
}

JsonValue read_json_file(const std::string& path, ErrorKind kind) {
  return parse_json(read_file(path), path, kind);
}

}  // namespace haq
