// The preprocessing spec: "resize=256,crop=224,mean=...,std=...,order=rgb"
// on the command line, or a JSON object in a config.

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "haq/core/error.h"
#include "haq/core/files.h"
#include "haq/core/json_reader.h"
#include "haq/data/dataset.h"

namespace haq::data {

namespace {

const std::vector<float> kImagenetMean = {0.485f, 0.456f, 0.406f};
const std::vector<float> kImagenetStd = {0.229f, 0.224f, 0.225f};

[[noreturn]] void bad(const std::string& key, const std::string& value, const char* expected) {
  fail(ErrorKind::usage, "", "--preprocess", "{}={}: expected {}", key, value, expected);
}

int64_t parse_size(const std::string& key, const std::string& value) {
  try {
    size_t used = 0;
    long long v = std::stoll(value, &used);
    if (used == value.size() && v >= 0 && v <= 65536) return v;
  } catch (const std::exception&) {
  }
  bad(key, value, "an integer 0..65536 (pixels)");
}

std::vector<float> parse_floats(const std::string& key, const std::string& value) {
  std::vector<float> out;
  size_t start = 0;
  while (true) {
    size_t end = value.find(':', start);
    std::string item =
        value.substr(start, end == std::string::npos ? std::string::npos : end - start);
    try {
      size_t used = 0;
      float v = std::stof(item, &used);
      if (used != item.size() || !std::isfinite(v)) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      bad(key, value, "numbers separated by ':' (one per channel, or one for all)");
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

float parse_positive(const std::string& key, const std::string& value) {
  try {
    size_t used = 0;
    float v = std::stof(value, &used);
    if (used == value.size() && std::isfinite(v) && v > 0) return v;
  } catch (const std::exception&) {
  }
  bad(key, value, "a positive number");
}

bool parse_flag(const std::string& key, const std::string& value) {
  if (value == "" || value == "1" || value == "true") return true;
  if (value == "0" || value == "false") return false;
  bad(key, value, "1|0|true|false");
}

std::string floats_text(const std::vector<float>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ":" : "") + fmt::format("{}", v[i]);
  return s;
}

}  // namespace

Preprocess parse_preprocess(const std::string& text) {
  Preprocess p;
  if (text.empty()) return p;
  if (text.front() == '{') {
    return preprocess_from_json(parse_json(text, "--preprocess", ErrorKind::usage));
  }
  if (text.ends_with(".json")) {
    return preprocess_from_json(read_json_file(text, ErrorKind::config));
  }
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    std::string item =
        text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    start = end == std::string::npos ? text.size() + 1 : end + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string key = item.substr(0, eq);
    std::string value = eq == std::string::npos ? std::string() : item.substr(eq + 1);
    if (key == "imagenet" && eq == std::string::npos) {
      p.resize = 256;
      p.crop = 224;
      p.mean = kImagenetMean;
      p.std = kImagenetStd;
    } else if (key == "none" && eq == std::string::npos) {
      p = Preprocess{};
    } else if (key == "scale") {
      p.scale = parse_positive(key, value);
    } else if (key == "resize") {
      p.resize = parse_size(key, value);
    } else if (key == "crop") {
      p.crop = parse_size(key, value);
    } else if (key == "mean") {
      p.mean = parse_floats(key, value);
    } else if (key == "std") {
      p.std = parse_floats(key, value);
      for (float s : p.std)
        if (!(s > 0)) bad(key, value, "positive numbers");
    } else if (key == "order") {
      if (value != "rgb" && value != "bgr") bad(key, value, "rgb or bgr");
      p.channel_order = value;
    } else if (key == "gray" || key == "grayscale") {
      p.channels = parse_flag(key, value) ? 1 : 0;
    } else if (key == "rgb") {
      p.channels = parse_flag(key, value) ? 3 : 0;
    } else if (key == "channels") {
      if (value == "auto") p.channels = 0;
      else if (value == "1" || value == "gray") p.channels = 1;
      else if (value == "3" || value == "rgb") p.channels = 3;
      else bad(key, value, "auto, 1 (gray) or 3 (rgb)");
    } else {
      fail(ErrorKind::usage, "", "--preprocess",
           "unknown key '{}' in '{}': expected resize, crop, scale, mean, std, order, gray, rgb, "
           "channels, imagenet or none",
           key, text);
    }
  }
  return p;
}

Preprocess preprocess_from_json(const JsonValue& value) {
  JsonObject obj = value.object();
  Preprocess p;
  auto floats = [](const JsonValue& v, bool positive) {
    std::vector<float> out;
    auto one = [&](const JsonValue& x) {
      out.push_back(static_cast<float>(positive ? x.as_number_above(0.0) : x.as_number()));
    };
    if (v.raw().is_array()) {
      for (const JsonValue& x : v.array(0)) one(x);  // []: none
    } else {
      one(v);
    }
    return out;
  };
  if (auto v = obj.opt("resize")) p.resize = v->as_int(0, 65536);
  if (auto v = obj.opt("crop")) p.crop = v->as_int(0, 65536);
  if (auto v = obj.opt("scale")) p.scale = static_cast<float>(v->as_number_above(0.0));
  if (auto v = obj.opt("mean")) p.mean = floats(*v, false);
  if (auto v = obj.opt("std")) p.std = floats(*v, true);
  if (auto v = obj.opt("channel_order")) p.channel_order = v->as_enum({"rgb", "bgr"});
  if (obj.has("grayscale") && obj.has("channels"))
    obj.fail_at("grayscale", "give one of \"grayscale\" and \"channels\", not both");
  if (auto v = obj.opt("grayscale")) p.channels = v->as_bool() ? 1 : 0;
  if (auto v = obj.opt("channels")) {
    const std::string c = v->as_enum({"auto", "gray", "rgb"});
    p.channels = c == "gray" ? 1 : c == "rgb" ? 3 : 0;
  }
  obj.finish();
  return p;
}

Preprocess preprocess_from_json(const nlohmann::json& j, const std::string& file,
                                const std::string& pointer) {
  auto doc = std::make_shared<const nlohmann::json>(j);
  auto ctx = std::make_shared<const JsonContext>(JsonContext{file, ErrorKind::config});
  return preprocess_from_json(JsonValue(doc, doc.get(), pointer.empty() ? "/" : pointer, ctx));
}

std::string to_string(const Preprocess& p) {
  std::vector<std::string> parts;
  if (p.resize) parts.push_back(fmt::format("resize={}", p.resize));
  if (p.crop) parts.push_back(fmt::format("crop={}", p.crop));
  if (p.scale != 255.f) parts.push_back(fmt::format("scale={}", p.scale));
  if (!p.mean.empty()) parts.push_back("mean=" + floats_text(p.mean));
  if (!p.std.empty()) parts.push_back("std=" + floats_text(p.std));
  if (p.channel_order != "rgb") parts.push_back("order=" + p.channel_order);
  if (p.channels == 1) parts.push_back("gray");
  if (p.channels == 3) parts.push_back("rgb");
  return fmt::format("{}", fmt::join(parts, ","));
}

nlohmann::json preprocess_to_json(const Preprocess& p) {
  // Floats through their shortest text, so 0.485f is written 0.485, not 0.48500001430511475.
  auto num = [](float f) { return std::stod(fmt::format("{}", f)); };
  nlohmann::json mean = nlohmann::json::array(), sd = nlohmann::json::array();
  for (float f : p.mean) mean.push_back(num(f));
  for (float f : p.std) sd.push_back(num(f));
  return {{"resize", p.resize},
          {"crop", p.crop},
          {"scale", num(p.scale)},
          {"mean", mean},
          {"std", sd},
          {"channel_order", p.channel_order},
          {"channels", p.channels == 1 ? "gray" : p.channels == 3 ? "rgb" : "auto"}};
}

}  // namespace haq::data
