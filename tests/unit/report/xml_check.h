#pragma once
// A small well-formedness check for the XML-compatible HTML we write: tags
// balanced and properly nested, attributes quoted, text and attribute values
// free of raw '<' and of '&' that does not start a known entity. Returns ""
// if fine, else what is wrong and where.

#include <string>
#include <vector>

namespace haq::test {

inline bool known_entity(const std::string& s, size_t amp) {
  for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"})
    if (s.compare(amp, std::string(e).size(), e) == 0) return true;
  return false;
}

inline std::string xml_problem(const std::string& s) {
  std::vector<std::string> stack;
  size_t i = 0;
  auto where = [&](size_t at) { return " at byte " + std::to_string(at); };
  while (i < s.size()) {
    if (s[i] == '&') {
      if (!known_entity(s, i)) return "bare '&'" + where(i);
      ++i;
      continue;
    }
    if (s[i] != '<') {
      if (s[i] == '>') return "bare '>' in text" + where(i);
      ++i;
      continue;
    }
    if (s.compare(i, 9, "<!DOCTYPE") == 0) {
      i = s.find('>', i) + 1;
      continue;
    }
    if (s.compare(i, 4, "<!--") == 0) {
      size_t end = s.find("-->", i);
      if (end == std::string::npos) return "unterminated comment" + where(i);
      i = end + 3;
      continue;
    }
    bool closing = i + 1 < s.size() && s[i + 1] == '/';
    size_t j = i + (closing ? 2 : 1);
    size_t name_start = j;
    while (j < s.size() &&
           (isalnum(static_cast<unsigned char>(s[j])) || s[j] == '-' || s[j] == ':'))
      ++j;
    std::string name = s.substr(name_start, j - name_start);
    if (name.empty()) return "bad tag" + where(i);
    // Attributes: name="value" pairs up to '>' or '/>'.
    bool self_closing = false;
    while (true) {
      while (j < s.size() && isspace(static_cast<unsigned char>(s[j]))) ++j;
      if (j >= s.size()) return "unterminated tag <" + name + where(i);
      if (s[j] == '>') {
        ++j;
        break;
      }
      if (s[j] == '/' && j + 1 < s.size() && s[j + 1] == '>') {
        self_closing = true;
        j += 2;
        break;
      }
      if (closing) return "attributes in a closing tag" + where(i);
      size_t a = j;
      while (j < s.size() && s[j] != '=' && s[j] != '>' &&
             !isspace(static_cast<unsigned char>(s[j])))
        ++j;
      if (j >= s.size() || s[j] != '=' || j + 1 >= s.size() || s[j + 1] != '"')
        return "attribute without a quoted value in <" + name + ">: " + s.substr(a, j - a) +
               where(j);
      size_t end = s.find('"', j + 2);
      if (end == std::string::npos) return "unterminated attribute" + where(j);
      for (size_t k = j + 2; k < end; ++k) {
        if (s[k] == '<') return "'<' in an attribute" + where(k);
        if (s[k] == '&' && !known_entity(s, k)) return "bare '&' in an attribute" + where(k);
      }
      j = end + 1;
    }
    if (closing) {
      if (stack.empty() || stack.back() != name)
        return "</" + name + "> closes " +
               (stack.empty() ? std::string("nothing") : "<" + stack.back() + ">") + where(i);
      stack.pop_back();
    } else if (!self_closing) {
      stack.push_back(name);
    }
    i = j;
  }
  if (!stack.empty()) return "<" + stack.back() + "> never closed";
  return "";
}

}  // namespace haq::test
