#include "haq/search/search.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <limits>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "haq/core/error.h"
#include "haq/core/files.h"

namespace haq::search {

namespace {
std::atomic<bool> g_stop{false};
std::atomic<int> g_signals{0};

extern "C" void on_stop_signal(int sig) {
  if (g_signals.fetch_add(1) >= 1) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_stop.store(true);
}

constexpr const char* kMagic = "HAQCKPT1";

std::filesystem::path checkpoint_file(const std::string& out_dir) {
  return std::filesystem::path(out_dir) / "checkpoint" / "state.bin";
}

void save_point(std::ostream& out, const EvaluatedPoint& p) {
  bin::write_u64(out, p.bits.size());
  for (const auto& b : p.bits) {
    bin::write_u64(out, static_cast<uint64_t>(b.w));
    bin::write_u64(out, static_cast<uint64_t>(b.a));
  }
  bin::write_string(out, p.key);
  bin::write_f64(out, p.accuracy_pct);
  bin::write_f64(out, p.costs.latency_s);
  bin::write_f64(out, p.costs.energy_pj);
  bin::write_f64(out, p.costs.size_bits);
  bin::write_f64(out, p.costs.bops);
  bin::write_u64(out, p.feasible ? 1 : 0);
  bin::write_u64(out, static_cast<uint64_t>(p.episode));
  bin::write_string(out, p.phase);
}

/// A u64 of the checkpoint that must be below `limit` (an index, bits):
/// a damaged one is Error(io), never an int that overflows or indexes past
/// an array (found by tests/fuzz/fuzz_checkpoint).
int read_below(std::istream& in, uint64_t limit, const char* what) {
  const uint64_t v = bin::read_u64(in);
  if (v >= limit)
    fail(ErrorKind::io, "", "", "corrupt checkpoint: {} {} is out of range (below {} expected)", what, v, limit);
  return static_cast<int>(v);
}

/// An episode number: -1 (a point no episode proposed) to 2^31-1.
int read_episode(std::istream& in) {
  const auto v = static_cast<int64_t>(bin::read_u64(in));
  if (v < -1 || v >= (int64_t{1} << 31))
    fail(ErrorKind::io, "", "", "corrupt checkpoint: episode {} is out of range", v);
  return static_cast<int>(v);
}

EvaluatedPoint load_point(std::istream& in) {
  EvaluatedPoint p;
  p.bits.resize(bin::read_count(in, 16));
  for (auto& b : p.bits) {
    b.w = read_below(in, 9, "weight bits");
    b.a = read_below(in, 9, "activation bits");
  }
  p.key = bin::read_string(in);
  p.accuracy_pct = bin::read_f64(in);
  p.costs.latency_s = bin::read_f64(in);
  p.costs.energy_pj = bin::read_f64(in);
  p.costs.size_bits = bin::read_f64(in);
  p.costs.bops = bin::read_f64(in);
  p.feasible = bin::read_u64(in) != 0;
  p.episode = read_episode(in);
  p.phase = bin::read_string(in);
  return p;
}

std::string checkpoint_bytes(const std::string& identity, const SearchResult& r, const Agent& agent) {
  std::ostringstream out(std::ios::binary);
  out.write(kMagic, 8);
  bin::write_string(out, identity);
  bin::write_u64(out, r.points.size());
  for (const auto& p : r.points) save_point(out, p);
  bin::write_u64(out, r.episodes.size());
  for (const auto& e : r.episodes) {
    bin::write_u64(out, static_cast<uint64_t>(e.episode));
    bin::write_u64(out, static_cast<uint64_t>(e.point));
    bin::write_f64(out, e.reward);
    bin::write_u64(out, e.cached ? 1 : 0);
    bin::write_f64(out, e.time_s);
    bin::write_f64(out, e.best_accuracy_pct);
  }
  bin::write_u64(out, static_cast<uint64_t>(r.best + 1));
  agent.save(out);
  return std::move(out).str();
}

}  // namespace

void load_checkpoint(const std::string& file, const std::string& identity, SearchResult& r,
                     Agent& agent) {
  // The input policy: a regular file of bounded size (a FIFO or /dev/zero is refused at once).
  const std::string bytes = read_file(file, kMaxCheckpointBytes);
  std::istringstream in(bytes, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  if (!in || std::string(magic, 8) != kMagic)
    fail(ErrorKind::io, file, "", "not a haq search checkpoint");
  try {
    std::string saved = bin::read_string(in);
    if (saved != identity) {
      // Name the first option that differs.
      std::string what = "the inputs or options differ";
      auto a = nlohmann::json::parse(saved, nullptr, false);
      auto b = nlohmann::json::parse(identity, nullptr, false);
      if (a.is_object() && b.is_object())
        for (auto it = b.begin(); it != b.end(); ++it)
          if (!a.contains(it.key()) || a[it.key()] != it.value()) {
            what = fmt::format("'{}' was {} and is now {}", it.key(),
                               a.contains(it.key()) ? a[it.key()].dump() : "unset", it.value().dump());
            break;
          }
      fail(ErrorKind::usage, file, "--resume",
           "the checkpoint was made by a different search: {}", what);
    }
    r.points.resize(bin::read_count(in, 8 * 10));
    for (auto& p : r.points) p = load_point(in);
    r.episodes.resize(bin::read_count(in, 8 * 6));
    for (auto& e : r.episodes) {
      e.episode = read_episode(in);
      e.point = read_below(in, r.points.size(), "point index");
      e.reward = bin::read_f64(in);
      e.cached = bin::read_u64(in) != 0;
      e.time_s = bin::read_f64(in);
      e.best_accuracy_pct = bin::read_f64(in);
    }
    r.best = read_below(in, r.points.size() + 1, "best point") - 1;
    agent.load(in);
    // Its contents say where it ends: anything after is not ours.
    const auto end = in.tellg();
    if (end >= 0 && static_cast<uint64_t>(end) < bytes.size())
      fail(ErrorKind::io, file, "", "{} bytes after the end of the checkpoint ({} bytes): not a checkpoint haq wrote",
           bytes.size() - static_cast<uint64_t>(end), static_cast<uint64_t>(end));
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::io && e.file().empty()) throw e.with_file(file);
    throw;
  }
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

void request_stop() { g_stop.store(true); }
bool stop_requested() { return g_stop.load(); }
void reset_stop() {
  g_stop.store(false);
  g_signals.store(0);
}
void install_stop_handlers() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

bool better_point(const EvaluatedPoint& a, const EvaluatedPoint& b, Metric tie_metric) {
  if (a.accuracy_pct != b.accuracy_pct) return a.accuracy_pct > b.accuracy_pct;
  return a.costs.get(tie_metric) < b.costs.get(tie_metric);
}

SearchResult run_search(const SearchOptions& options, const SearchProblem& problem,
                        const SearchHooks& hooks) {
  const auto t0 = std::chrono::steady_clock::now();
  Environment env(problem.layers, problem.costs, problem.budgets, problem.w_range, problem.a_range);
  auto agent = make_agent(options.algo, env, options.seed, options.ddpg);
  const Metric tie_metric = problem.budgets.empty() ? Metric::latency : problem.budgets[0].spec.metric;

  SearchResult r;
  std::map<std::string, int> index;  // policy key -> point
  if (options.resume) {
    if (hooks.out_dir.empty()) fail(ErrorKind::usage, "", "--resume", "needs --out");
    auto file = checkpoint_file(hooks.out_dir);
    if (!path_exists(file))
      fail(ErrorKind::usage, file.string(), "--resume", "no checkpoint to resume from");
    load_checkpoint(file.string(), hooks.identity, r, *agent);
    for (const auto& p : r.points)
      if (p.bits.size() != problem.layers.size())
        fail(ErrorKind::io, file.string(), "",
             "corrupt checkpoint: a policy of {} layers for a model of {}", p.bits.size(), problem.layers.size());
    for (size_t i = 0; i < r.points.size(); ++i) index[r.points[i].key] = static_cast<int>(i);
    r.resumed_from = static_cast<int>(r.episodes.size());
  }
  if (!hooks.out_dir.empty()) {
    ensure_output_dir(std::filesystem::path(hooks.out_dir) / "checkpoint");
    // A kill between the checkpoint's write and the log's leaves the log one
    // episode short; rewrite it from the checkpoint, also when no episode is left to run.
    if (options.resume)
      write_file_atomic(std::filesystem::path(hooks.out_dir) / "search.jsonl", search_jsonl(r, problem));
  }

  r.stop_reason = "episodes";
  double reserve_s = 0;  // unknown before the first measurement
  for (int episode = static_cast<int>(r.episodes.size()); episode < options.episodes; ++episode) {
    if (stop_requested()) {
      r.stop_reason = "interrupted";
      break;
    }
    if (options.time_budget_s > 0 && seconds_since(t0) + reserve_s >= options.time_budget_s) {
      r.stop_reason = "time budget";
      break;
    }
    auto proposal = agent->ask(episode, options.episodes - episode);
    if (!proposal) {
      r.stop_reason = "done";
      break;
    }
    quant::Policy policy = to_policy(problem.layers, proposal->bits);
    std::string key = quant::policy_key(policy);
    EpisodeLog log;
    log.episode = episode;
    auto it = index.find(key);
    if (it != index.end()) {
      log.cached = true;
      log.point = it->second;
    } else {
      EvaluatedPoint p;
      p.bits = proposal->bits;
      p.key = key;
      p.accuracy_pct = problem.accuracy(policy);
      p.costs = env.total(p.bits);
      p.feasible = env.feasible(p.bits);
      p.episode = episode;
      p.phase = proposal->phase;
      r.points.push_back(p);
      log.point = static_cast<int>(r.points.size() - 1);
      index[key] = log.point;
      ++r.evaluations;
      if (p.feasible && (r.best < 0 || better_point(p, r.points[r.best], tie_metric)))
        r.best = log.point;
    }
    const auto& point = r.points[log.point];
    log.reward = Environment::reward(point.accuracy_pct, problem.fp32_accuracy_pct);
    agent->tell(*proposal, point.accuracy_pct, log.reward);
    log.time_s = seconds_since(t0);
    log.best_accuracy_pct =
        r.best >= 0 ? r.points[r.best].accuracy_pct : std::numeric_limits<double>::quiet_NaN();
    r.episodes.push_back(log);
    if (!hooks.out_dir.empty()) {
      write_file_atomic(checkpoint_file(hooks.out_dir), checkpoint_bytes(hooks.identity, r, *agent));
      write_file_atomic(std::filesystem::path(hooks.out_dir) / "search.jsonl",
                        search_jsonl(r, problem));
    }
    if (hooks.reserve_s) reserve_s = std::max(0.0, hooks.reserve_s(r));
    if (hooks.on_episode) {
      double elapsed = seconds_since(t0);
      int done_here = static_cast<int>(r.episodes.size()) - r.resumed_from;
      double per_episode = done_here > 0 ? elapsed / done_here : 0;
      double loop_left = per_episode * (options.episodes - static_cast<int>(r.episodes.size()));
      if (options.time_budget_s > 0)
        loop_left = std::min(loop_left, std::max(0.0, options.time_budget_s - reserve_s - elapsed));
      SearchProgress pr{r, r.episodes.back(), options.episodes,
                        elapsed > 0 ? r.evaluations / elapsed : 0, loop_left + reserve_s, reserve_s};
      hooks.on_episode(pr);
    }
  }
  if (r.stop_reason == "episodes" && static_cast<int>(r.episodes.size()) >= options.episodes)
    r.stop_reason = "done";
  r.seconds = seconds_since(t0);
  return r;
}

std::string search_jsonl(const SearchResult& r, const SearchProblem& problem) {
  std::string out;
  for (const auto& e : r.episodes) {
    const auto& p = r.points[e.point];
    nlohmann::json j;
    j["episode"] = e.episode;
    j["policy"] = p.key;
    j["phase"] = p.phase;
    j["accuracy"] = p.accuracy_pct;
    j["reward"] = e.reward;
    j["latency_s"] = p.costs.latency_s;
    j["energy_pj"] = p.costs.energy_pj;
    j["size_bits"] = p.costs.size_bits;
    j["bops"] = p.costs.bops;
    for (const auto& b : problem.budgets)
      j[std::string(to_string(b.spec.metric)) + "_ratio"] =
          b.reference > 0 ? p.costs.get(b.spec.metric) / b.reference : 0.0;
    j["feasible"] = p.feasible;
    j["cached"] = e.cached;
    if (std::isnan(e.best_accuracy_pct)) j["best_accuracy"] = nullptr;
    else j["best_accuracy"] = e.best_accuracy_pct;
    j["time_s"] = e.time_s;
    out += j.dump();
    out += '\n';
  }
  return out;
}

double parse_duration_s(const std::string& text) {
  const char* begin = text.c_str();
  char* end = nullptr;
  double v = std::strtod(begin, &end);
  std::string unit(end);
  double f = 0;
  if (end == begin || !std::isfinite(v) || v < 0) f = 0;
  else if (unit.empty() || unit == "s") f = 1;
  else if (unit == "m" || unit == "min") f = 60;
  else if (unit == "h") f = 3600;
  if (f == 0)
    fail(ErrorKind::usage, "", "--time-budget",
         "expected a duration such as 90s, 20m or 1.5h, got '{}'", text);
  return v * f;
}

}  // namespace haq::search
