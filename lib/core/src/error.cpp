#include "haq/core/error.h"

namespace haq {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::usage: return "usage";
    case ErrorKind::io: return "io";
    case ErrorKind::model: return "model";
    case ErrorKind::unsupported: return "unsupported";
    case ErrorKind::profile: return "profile";
    case ErrorKind::policy: return "policy";
    case ErrorKind::data: return "data";
    case ErrorKind::config: return "config";
    case ErrorKind::internal: return "internal";
  }
  return "unknown";
}

namespace {
// Names come from the user's files (an ONNX node called "a\0b" or holding an
// escape sequence): printed raw, a NUL cuts the message where C strings are
// used and control characters garble the terminal. Every C0 control and DEL
// is written as \xNN, so the message stays one readable line.
void append_escaped(std::string& out, const std::string& text) {
  static const char* const hex = "0123456789abcdef";
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += ch;
    }
  }
}

std::string join_message(const std::string& file, const std::string& where,
                         const std::string& message) {
  std::string out;
  for (const std::string* part : {&file, &where, &message}) {
    if (part->empty()) continue;
    if (!out.empty()) out += ": ";
    append_escaped(out, *part);
  }
  return out;
}
}  // namespace

Error::Error(ErrorKind kind, std::string file, std::string where, std::string message)
    : std::runtime_error(join_message(file, where, message)),
      kind_(kind),
      file_(std::move(file)),
      where_(std::move(where)),
      message_(std::move(message)) {}

Error Error::with_context(const std::string& outer_where) const {
  std::string where = where_.empty() ? outer_where : outer_where + ": " + where_;
  return Error(kind_, file_, where, message_);
}

Error Error::with_file(const std::string& file) const {
  return Error(kind_, file_.empty() ? file : file_, where_, message_);
}

}  // namespace haq
