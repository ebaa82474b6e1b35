#include <catch2/catch.hpp>

#include "haq/core/json_reader.h"

using haq::Error;
using haq::ErrorKind;
using haq::JsonObject;
using haq::parse_json;

namespace {
// The full what() of the Error thrown by f, or "" if none.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("json reader: typed reads with ranges") {
  auto root = parse_json(R"({"batch": 16, "mhz": 200.5, "name": "x", "on": true,
                             "range": [1, 8], "whole": 4.0})",
                         "p.json", ErrorKind::profile);
  JsonObject obj = root.object();
  CHECK(obj.get("batch").as_int(1) == 16);
  CHECK(obj.get("mhz").as_number_above(0.0) == 200.5);
  CHECK(obj.get("name").as_string(true) == "x");
  CHECK(obj.get("on").as_bool());
  auto r = obj.get("range").array(2, 2);
  CHECK(r[0].as_int(1, 8) == 1);
  CHECK(r[1].pointer() == "/range/1");
  CHECK(obj.get("whole").as_int() == 4);
  CHECK_FALSE(obj.opt("missing").has_value());
  CHECK_NOTHROW(obj.finish());
}

TEST_CASE("json reader: errors name the file and the exact pointer") {
  auto root = parse_json(R"({"memory": {"dram_bits_per_cycle": -4, "frac": 2.5, "s": 3},
                             "bits": [1, 9], "arch": "bit-seral", "mhz": 0})",
                         "bismo.json", ErrorKind::profile);
  JsonObject obj = root.object();
  JsonObject mem = obj.get("memory").object();
  CHECK(error_of([&] { mem.get("dram_bits_per_cycle").as_int(1); }) ==
        "bismo.json: /memory/dram_bits_per_cycle: expected a positive integer, got -4");
  CHECK(error_of([&] { mem.get("frac").as_int(0); }) ==
        "bismo.json: /memory/frac: expected a non-negative integer, got 2.5");
  CHECK(error_of([&] { mem.get("s").as_string(); }) == "bismo.json: /memory/s: expected a string, got 3");
  CHECK(error_of([&] { mem.get("absent"); }) ==
        "bismo.json: /memory/absent: missing required key \"absent\"");
  CHECK(error_of([&] { obj.get("bits").array()[1].as_int(1, 8); }) ==
        "bismo.json: /bits/1: expected an integer in 1..8, got 9");
  CHECK(error_of([&] { obj.get("bits").array(3); }) ==
        "bismo.json: /bits: expected an array of at least 3 elements, got 2");
  CHECK(error_of([&] { obj.get("arch").as_enum({"bit-serial", "bit-fusion", "table"}); }) ==
        "bismo.json: /arch: expected one of \"bit-serial\", \"bit-fusion\", \"table\", got "
        "\"bit-seral\" (did you mean \"bit-serial\"?)");
  CHECK(error_of([&] { obj.get("mhz").as_number_above(0.0); }) ==
        "bismo.json: /mhz: expected a positive number, got 0");
  CHECK(error_of([&] { obj.get("memory").as_number(0.0, 1.0); }).rfind(
            "bismo.json: /memory: expected a number in [0, 1], got {", 0) == 0);
  try {
    mem.get("s").as_bool();
    FAIL("no throw");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::profile);
    CHECK(e.file() == "bismo.json");
    CHECK(e.where() == "/memory/s");
  }
}

TEST_CASE("json reader: finish rejects unknown keys with a did-you-mean") {
  auto root = parse_json(R"({"batch": 1, "memroy": {}, "zzz": 1})", "p.json", ErrorKind::config);
  JsonObject obj = root.object();
  obj.get("batch").as_int(1);
  obj.opt("memory");
  CHECK(error_of([&] { obj.finish(); }) ==
        "p.json: /memroy: unknown key \"memroy\" (did you mean \"memory\"?)");
  obj.allow("memroy");
  // No close key: the known keys are listed instead.
  CHECK(error_of([&] { obj.finish(); }) ==
        "p.json: /zzz: unknown key \"zzz\" (known keys: batch, memory, memroy)");
  obj.allow("zzz");
  CHECK_NOTHROW(obj.finish());
}

TEST_CASE("json reader: keys with / and ~ are escaped in pointers") {
  auto root = parse_json(R"({"a/b": {"c~d": "x"}})", "p.json", ErrorKind::config);
  JsonObject obj = root.object();
  JsonObject inner = obj.get("a/b").object();
  CHECK(error_of([&] { inner.get("c~d").as_int(); }) ==
        "p.json: /a~1b/c~0d: expected an integer, got \"x\"");
}

TEST_CASE("json reader: syntax errors give line and column") {
  CHECK(error_of([] { parse_json("{\n  \"a\": 1,\n  \"b\" 2\n}", "bad.json", ErrorKind::policy); }) ==
        "bad.json: line 3 column 7: not valid JSON");
  CHECK(error_of([] { parse_json("[1, 2]", "arr.json", ErrorKind::policy).object(); }) ==
        "arr.json: /: expected an object, got [1,2]");
}

TEST_CASE("edit distance and closest match") {
  CHECK(haq::edit_distance("kitten", "sitting") == 3);
  CHECK(haq::edit_distance("", "abc") == 3);
  CHECK(haq::edit_distance("dm", "dm") == 0);
  CHECK(haq::closest_match("dram_bits_per_cyle", {"batch", "dram_bits_per_cycle"}) ==
        "dram_bits_per_cycle");
  CHECK(haq::closest_match("xyz", {"batch", "memory"}) == "");
  CHECK(haq::closest_match("dk", {"dm", "dk", "dn"}) == "dk");
}

TEST_CASE("json reader: a duplicate key is refused with its pointer, at any depth", "[issue17]") {
  CHECK(error_of([] { parse_json(R"({"batch": 1, "batch": 2})", "p.json", ErrorKind::profile); }) ==
        "p.json: /batch: duplicate key \"batch\"");
  CHECK(error_of([] {
          parse_json(R"({"memory": {"a": 1, "b": {"x": 1}, "b": 2}})", "p.json", ErrorKind::profile);
        }) == "p.json: /memory/b: duplicate key \"b\"");
  // Inside arrays: the element's index; keys with / and ~ escaped.
  CHECK(error_of([] {
          parse_json(R"({"layers": [{"name": "a"}, [1, {"k": 1}], {"a/b": 1, "a/b": 2}]})", "pol.json",
                     ErrorKind::policy);
        }) == "pol.json: /layers/2/a~1b: duplicate key \"a/b\"");
  CHECK(error_of([] {
          haq::parse_json_document(R"([{"x": [0, 1, {"y": 0, "y": 0}]}])", "c.json", ErrorKind::config);
        }) == "c.json: /0/x/2/y: duplicate key \"y\"");
  // Equal keys in different objects are not duplicates.
  CHECK_NOTHROW(parse_json(R"({"a": {"k": 1}, "b": {"k": 2}, "c": [{"k": 1}, {"k": 2}]})", "p.json",
                           ErrorKind::profile));
}
