// SearchOptions: defaults, the config file (strict), and the effective config.

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "haq/core/error.h"
#include "haq/core/json_reader.h"
#include "haq/search/search.h"
#include "option_keys.h"

namespace haq::search {

SearchOptions default_search_options() { return SearchOptions{}; }

namespace {

BitRange read_range(const JsonValue& v) {
  auto arr = v.array(2, 2);
  BitRange r;
  r.min = static_cast<int>(arr[0].as_int(1, 8));
  r.max = static_cast<int>(arr[1].as_int(1, 8));
  if (r.min > r.max) v.fail("expected [min, max] with min <= max");
  return r;
}

}  // namespace

BitRange parse_bit_range(const std::string& text, const std::string& option) {
  // "MIN..MAX" or one number (min = max).
  auto number = [&](const std::string& t) {
    if (t.size() == 1 && t[0] >= '1' && t[0] <= '8') return t[0] - '0';
    fail(ErrorKind::usage, "", option, "expected bits MIN..MAX within 1..8 (e.g. 2..8) or one number, got '{}'", text);
  };
  const size_t dots = text.find("..");
  BitRange r;
  r.min = number(text.substr(0, dots));
  r.max = dots == std::string::npos ? r.min : number(text.substr(dots + 2));
  if (r.min > r.max) fail(ErrorKind::usage, "", option, "'{}': MIN is above MAX", text);
  return r;
}

namespace detail {

void read_shared_keys(JsonObject& obj, SearchOptions& o) {
  if (auto v = obj.opt("data")) o.data = v->as_string(true);
  if (auto v = obj.opt("preprocess")) {
    if (v->raw().is_string()) {
      try {
        o.preprocess = data::parse_preprocess(v->as_string());
      } catch (const Error& e) {
        v->fail(e.message());
      }
    } else {
      o.preprocess = data::preprocess_from_json(*v);
    }
  }
  if (auto v = obj.opt("labels")) o.labels = v->as_string();
  if (auto v = obj.opt("metric")) o.metric = v->as_enum({"top1", "top5", "fidelity"});
  if (auto v = obj.opt("episodes")) o.episodes = static_cast<int>(v->as_int(1, 1000000));
  if (auto v = obj.opt("time_budget")) {
    if (v->raw().is_string()) {
      try {
        o.time_budget_s = parse_duration_s(v->as_string());
      } catch (const Error& e) {
        v->fail(e.message());
      }
    } else {
      o.time_budget_s = v->as_number(0);
    }
  }
  if (auto v = obj.opt("w_bits")) o.w_bits = read_range(*v);
  if (auto v = obj.opt("a_bits")) o.a_bits = read_range(*v);
  if (auto v = obj.opt("eval_samples")) o.eval_samples = v->as_int(1);
  if (auto v = obj.opt("calib_samples")) o.calib_samples = v->as_int(1);
  if (auto v = obj.opt("equalize")) o.equalize = v->as_bool();
  if (auto v = obj.opt("input_bias_correction")) o.input_bias_correction = v->as_bool();
  if (auto v = obj.opt("act_quant")) {
    try {
      o.act_quant = quant::parse_act_quant(v->as_string());
    } catch (const Error&) {
      v->fail(fmt::format("expected \"symmetric\" or \"asymmetric\", got \"{}\"", v->as_string()));
    }
  }
  if (auto v = obj.opt("weight_rounding")) {
    try {
      o.weight_rounding = quant::parse_weight_rounding(v->as_string());
    } catch (const Error&) {
      v->fail(fmt::format("expected \"nearest\" or \"adaround\", got \"{}\"", v->as_string()));
    }
  }
  if (auto v = obj.opt("rounding_cache")) o.rounding_cache = v->as_string(true);
  if (auto v = obj.opt("test_samples")) o.test_samples = v->as_int(0);
  if (auto v = obj.opt("batch")) o.batch = v->as_int(1, 100000);
  if (auto v = obj.opt("select_samples")) o.select_samples = v->as_int(0);
  if (auto v = obj.opt("select_top")) o.select_top = static_cast<int>(v->as_int(0, 100000));
  if (auto v = obj.opt("refine_rounds")) o.refine_rounds = static_cast<int>(v->as_int(0, 1000));
  if (auto v = obj.opt("refine_moves")) o.refine_moves = static_cast<int>(v->as_int(1, 100000));
  if (auto v = obj.opt("max_front_points")) o.max_front_points = static_cast<int>(v->as_int(1, 100000));
}

}  // namespace detail

SearchOptions read_search_config(const std::string& path, SearchOptions o) {
  JsonValue root = read_json_file(path, ErrorKind::config);
  JsonObject obj = root.object();
  if (auto v = obj.opt("schema")) {
    if (v->as_string() != "haq.search/1") v->fail("expected \"haq.search/1\"");
  }
  obj.allow("description");
  if (auto v = obj.opt("model")) o.model = v->as_string();
  if (auto v = obj.opt("hw")) o.hw = v->as_string();
  if (auto v = obj.opt("budgets")) o.budgets = v->as_string_array(1);
  if (auto v = obj.opt("out")) o.out = v->as_string();
  if (auto v = obj.opt("algo")) o.algo = v->as_enum(agent_names());
  if (auto v = obj.opt("seed")) o.seed = static_cast<uint64_t>(v->as_int(0));
  if (auto v = obj.opt("quiet")) o.quiet = v->as_bool();
  detail::read_shared_keys(obj, o);
  if (auto v = obj.opt("ddpg")) {
    JsonObject d = v->object();
    auto& p = o.ddpg;
    if (auto x = d.opt("hidden")) p.hidden = static_cast<int>(x->as_int(1, 4096));
    if (auto x = d.opt("lr_actor")) p.lr_actor = static_cast<float>(x->as_number_above(0));
    if (auto x = d.opt("lr_critic")) p.lr_critic = static_cast<float>(x->as_number_above(0));
    if (auto x = d.opt("tau")) p.tau = static_cast<float>(x->as_number(0, 1));
    if (auto x = d.opt("discount")) p.discount = static_cast<float>(x->as_number(0, 1));
    if (auto x = d.opt("batch")) p.batch = static_cast<int>(x->as_int(1, 100000));
    if (auto x = d.opt("replay_per_layer")) p.replay_per_layer = static_cast<int>(x->as_int(1, 1000000));
    if (auto x = d.opt("warmup")) p.warmup = static_cast<int>(x->as_int(0, 1000000));
    if (auto x = d.opt("sigma")) p.sigma = x->as_number(0);
    if (auto x = d.opt("sigma_decay")) p.sigma_decay = x->as_number(0, 1);
    if (auto x = d.opt("baseline_alpha")) p.baseline_alpha = x->as_number(0, 1);
    if (auto x = d.opt("updates_per_step")) p.updates_per_step = static_cast<int>(x->as_int(0, 1000));
    d.finish();
  }
  obj.finish();
  o.config = path;
  return o;
}

nlohmann::json search_options_to_json(const SearchOptions& o) {
  nlohmann::json j;
  j["schema"] = "haq.search/1";
  j["model"] = o.model;
  j["hw"] = o.hw;
  j["data"] = o.data;
  j["preprocess"] = data::preprocess_to_json(o.preprocess);
  j["labels"] = o.labels;
  j["metric"] = o.metric;
  j["budgets"] = o.budgets;
  j["out"] = o.out;
  j["algo"] = o.algo;
  j["episodes"] = o.episodes;
  j["seed"] = o.seed;
  j["time_budget"] = o.time_budget_s;
  j["w_bits"] = {o.w_bits.min, o.w_bits.max};
  j["a_bits"] = {o.a_bits.min, o.a_bits.max};
  j["eval_samples"] = o.eval_samples;
  j["calib_samples"] = o.calib_samples;
  if (o.equalize) j["equalize"] = true;  // only when on: configs of runs without it read back unchanged
  if (o.weight_rounding != quant::WeightRounding::nearest) j["weight_rounding"] = quant::to_string(o.weight_rounding);
  if (!o.rounding_cache.empty()) j["rounding_cache"] = o.rounding_cache;
  j["act_quant"] = quant::to_string(o.act_quant);
  j["input_bias_correction"] = o.input_bias_correction;
  j["test_samples"] = o.test_samples;
  j["batch"] = o.batch;
  j["max_front_points"] = o.max_front_points;
  j["select_samples"] = o.select_samples;
  j["select_top"] = o.select_top;
  j["refine_rounds"] = o.refine_rounds;
  j["refine_moves"] = o.refine_moves;
  j["quiet"] = o.quiet;
  const auto& p = o.ddpg;
  j["ddpg"] = {{"hidden", p.hidden},
               {"lr_actor", p.lr_actor},
               {"lr_critic", p.lr_critic},
               {"tau", p.tau},
               {"discount", p.discount},
               {"batch", p.batch},
               {"replay_per_layer", p.replay_per_layer},
               {"warmup", p.warmup},
               {"sigma", p.sigma},
               {"sigma_decay", p.sigma_decay},
               {"baseline_alpha", p.baseline_alpha},
               {"updates_per_step", p.updates_per_step}};
  return j;
}

}  // namespace haq::search
