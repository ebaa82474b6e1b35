// haq sweep / haq merge: the job list, shards, completion markers, and the
// merged tables including the cross-hardware matrix.
#include "haq/search/sweep.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>

#include "haq/core/error.h"
#include "haq/core/files.h"
#include "haq/core/json_reader.h"
#include "haq/data/dataset.h"
#include "haq/engine/engine.h"
#include "haq/hw/profile.h"
#include "haq/hw/simulate.h"
#include "haq/model/graph.h"
#include "haq/quant/policy.h"
#include "haq/search/agent.h"
#include "haq/search/pipeline.h"
#include "option_keys.h"

namespace haq::search {

namespace fs = std::filesystem;

namespace {

std::string stem_of(const std::string& path) { return fs::path(path).stem().string(); }

// Keeps letters, digits, '.', '_' and '-'; anything else becomes '_' so
// that an id is always a single safe folder name.
std::string safe_name(const std::string& s) {
  std::string r;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    r += ok ? c : '_';
  }
  return r;
}

/// A Markdown table cell: `|` and HTML metacharacters escaped, line breaks as spaces.
std::string md_cell(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '|': out += "\\|"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '\n': case '\r': out += ' '; break;
      default: out += ch;
    }
  }
  return out;
}

/// Typed fields of a JSON file haq wrote, by JSON pointer; a missing or
/// mistyped field is an error naming the file and the pointer.
struct WrittenJson {
  const nlohmann::json& j;
  const std::string& file;
  ErrorKind kind;
  const char* what;  ///< "a policy written by haq search"
  const nlohmann::json& at(const std::string& ptr) const {
    const nlohmann::json::json_pointer p(ptr);
    if (!j.contains(p)) fail(kind, file, ptr, "missing: not {}", what);
    return j.at(p);
  }
  std::string str(const std::string& ptr) const {
    const auto& v = at(ptr);
    if (!v.is_string()) fail(kind, file, ptr, "expected a string, got {}: not {}", v.type_name(), what);
    return v.get<std::string>();
  }
  double number(const std::string& ptr) const {
    const auto& v = at(ptr);
    if (!v.is_number()) fail(kind, file, ptr, "expected a number, got {}: not {}", v.type_name(), what);
    return v.get<double>();
  }
  uint64_t seed(const std::string& ptr) const {
    const auto& v = at(ptr);
    if (!v.is_number_unsigned() || v.get<uint64_t>() > (uint64_t{1} << 63) - 1)
      fail(kind, file, ptr, "expected a seed in 0..2^63-1, got {}: not {}", v.dump(), what);
    return v.get<uint64_t>();
  }
  std::vector<std::string> budgets(const std::string& ptr, bool objects) const {
    const auto& v = at(ptr);
    if (!v.is_array()) fail(kind, file, ptr, "expected an array, got {}: not {}", v.type_name(), what);
    std::vector<std::string> out;
    for (size_t i = 0; i < v.size(); ++i)
      out.push_back(str(ptr + "/" + std::to_string(i) + (objects ? "/budget" : "")));
    return out;
  }
};

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string r = "\"";
  for (char c : s) r += c == '"' ? std::string("\"\"") : std::string(1, c);
  return r + "\"";
}

// Shortest round-trip text would differ across libcs only in formatting;
// a fixed %.6g keeps the tables readable and deterministic.
std::string num(double v) { return fmt::format("{:.6g}", v); }

}  // namespace

SweepSpec read_sweep_file(const std::string& path) {
  JsonValue root = read_json_file(path, ErrorKind::config);
  JsonObject obj = root.object();
  SweepSpec s;
  s.file = path;
  s.common = default_search_options();
  s.common.quiet = true;
  if (auto v = obj.opt("schema"))
    if (v->as_string() != "haq.sweep/1") v->fail("expected \"haq.sweep/1\"");
  obj.allow("description");
  // Missing files fail now, not hours later when their first job starts.
  auto existing_file = [](const JsonValue& v) {
    std::string path = v.as_string(true);
    if (!path_is_regular_file(path))
      v.fail(fmt::format("no such file '{}' (paths are relative to the current folder)", path));
    return path;
  };
  for (const auto& v : obj.get("models").array(1)) s.models.push_back(existing_file(v));
  for (const auto& v : obj.get("profiles").array(1)) s.profiles.push_back(existing_file(v));
  for (const auto& v : obj.get("budgets").array(1)) {
    if (v.raw().is_string()) {
      s.budgets.push_back({v.as_string(true)});
    } else if (v.raw().is_array()) {
      std::vector<std::string> set;
      for (const auto& b : v.array(1)) set.push_back(b.as_string(true));
      s.budgets.push_back(set);
    } else {
      v.fail("expected a budget string (e.g. \"latency<=0.5x\") or a list of them");
    }
  }
  if (auto v = obj.opt("algos")) {
    s.algos.clear();
    for (const auto& a : v->array(1)) s.algos.push_back(a.as_enum(agent_names()));
  }
  if (auto v = obj.opt("seeds")) {
    s.seeds.clear();
    for (const auto& x : v->array(1)) s.seeds.push_back(static_cast<uint64_t>(x.as_int(0)));
  }
  SearchOptions& o = s.common;
  detail::read_shared_keys(obj, o);
  obj.finish();
  // Ids must be unique: checked here so that a bad file fails before any job runs.
  (void)expand_jobs(s);
  return s;
}

std::string budget_id(const std::vector<std::string>& budgets) {
  std::string r;
  for (const auto& b : budgets) {
    std::string t;
    for (char c : b)
      if (c != ' ') t += c;
    for (const std::string op : {"<=", ">=", "<", "="}) {
      const size_t at = t.find(op);
      if (at != std::string::npos) {
        t = t.substr(0, at) + "-" + t.substr(at + op.size());
        break;
      }
    }
    if (!r.empty()) r += '+';
    r += safe_name(t);
  }
  return r;
}

std::vector<SweepJob> expand_jobs(const SweepSpec& spec) {
  // A file of a few kilobytes can list a product of billions (1000 seeds x
  // 1000 budgets x ...): counted before any job is made, and refused.
  constexpr double kMaxJobs = 100000;
  const double count = static_cast<double>(spec.models.size()) * static_cast<double>(spec.profiles.size()) *
                       static_cast<double>(spec.budgets.size()) * static_cast<double>(spec.algos.size()) *
                       static_cast<double>(spec.seeds.size());
  if (count > kMaxJobs)
    fail(ErrorKind::config, spec.file, "/",
         "the sweep expands to {:.0f} jobs ({} models x {} profiles x {} budgets x {} algos x {} seeds); at most "
         "{:.0f} are allowed: split it into several sweep files",
         count, spec.models.size(), spec.profiles.size(), spec.budgets.size(), spec.algos.size(),
         spec.seeds.size(), kMaxJobs);
  std::vector<SweepJob> jobs;
  std::map<std::string, int> seen;
  for (size_t mi = 0; mi < spec.models.size(); ++mi)
    for (size_t pi = 0; pi < spec.profiles.size(); ++pi)
      for (size_t bi = 0; bi < spec.budgets.size(); ++bi)
        for (const auto& a : spec.algos)
          for (uint64_t seed : spec.seeds) {
            const std::string& m = spec.models[mi];
            const std::string& p = spec.profiles[pi];
            const std::vector<std::string>& b = spec.budgets[bi];
            SweepJob j;
            j.index = static_cast<int>(jobs.size());
            j.model_at = static_cast<int>(mi);
            j.profile_at = static_cast<int>(pi);
            j.budgets_at = static_cast<int>(bi);
            j.model = m;
            j.profile = p;
            j.budgets = b;
            j.algo = a;
            j.seed = seed;
            j.id = fmt::format("{}__{}__{}__{}__s{}", safe_name(stem_of(m)), safe_name(stem_of(p)),
                               budget_id(b), a, seed);
            auto [it, fresh] = seen.emplace(j.id, j.index);
            if (!fresh)
              fail(ErrorKind::config, spec.file, "/",
                   "jobs {} and {} would both be '{}' (models, profiles or budgets repeat a name)",
                   it->second, j.index, j.id);
            jobs.push_back(j);
          }
  return jobs;
}

Shard parse_shard(const std::string& text) {
  Shard s;
  auto slash = text.find('/');
  bool ok = slash != std::string::npos && slash > 0 && slash + 1 < text.size() &&
            text.find_first_not_of("0123456789/") == std::string::npos &&
            text.find('/', slash + 1) == std::string::npos && slash < 9 && text.size() - slash < 10;
  if (ok) {
    s.k = std::stoi(text.substr(0, slash));
    s.n = std::stoi(text.substr(slash + 1));
    ok = s.n >= 1 && s.k >= 1 && s.k <= s.n;
  }
  if (!ok)
    fail(ErrorKind::usage, "", "--shard", "expected K/N with 1 <= K <= N (e.g. 2/4), got '{}'",
         text);
  return s;
}

SearchOptions job_options(const SweepSpec& spec, const SweepJob& job, const fs::path& job_dir) {
  SearchOptions o = spec.common;
  o.model = job.model;
  o.hw = job.profile;
  o.budgets = job.budgets;
  o.algo = job.algo;
  o.seed = job.seed;
  o.out = job_dir.string();
  o.resume = path_exists(job_dir / "checkpoint" / "state.bin");
  return o;
}

bool job_complete(const fs::path& job_dir) { return path_exists(job_dir / "job.json"); }

nlohmann::json sweep_json(const SweepSpec& spec, const std::vector<SweepJob>& jobs) {
  nlohmann::json j;
  j["schema"] = "haq.sweep-jobs/1";
  j["sweep_file"] = spec.file;
  nlohmann::json common = search_options_to_json(spec.common);
  for (const char* k : {"model", "hw", "budgets", "out", "algo", "seed", "quiet"}) common.erase(k);
  j["common"] = common;
  nlohmann::json list = nlohmann::json::array();
  for (const auto& job : jobs)
    list.push_back({{"index", job.index},
                    {"id", job.id},
                    {"model", job.model},
                    {"profile", job.profile},
                    {"budgets", job.budgets},
                    {"algo", job.algo},
                    {"seed", job.seed}});
  j["jobs"] = list;
  return j;
}

std::string describe_job(const SweepJob& job) {
  return fmt::format("{} x {} x {} x {} x seed {}", job.model, job.profile,
                     fmt::join(job.budgets, " + "), job.algo, job.seed);
}

std::string format_problem(const SweepSpec& spec, const SweepJob& job, const JobProblem& problem) {
  std::string r = spec.file + ": ";
  if (!problem.pointer.empty()) r += problem.pointer + ": ";
  return r + fmt::format("job {} ({}): {}", job.index + 1, describe_job(job), problem.message);
}

namespace {

// One (model, profile) pair, checked once for all its jobs.
struct PairCheck {
  std::optional<SearchTarget> target;  ///< empty if the pair is bad
  int64_t classes = 0;           ///< the model's output size (what the data is checked against)
  std::string pointer, message;  ///< why the pair is bad
};

PairCheck check_pair(const SearchOptions& o, const SweepJob& job) {
  PairCheck c;
  try {
    SearchTarget t = load_search_target(o);
    // The engine rejects ops it cannot run and knows the output size.
    engine::EngineOptions eo;
    eo.batch = t.graph.batch;
    c.classes = engine::Engine(t.graph, eo).num_classes();
    c.target = std::move(t);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::internal) throw;
    if (e.file() == o.hw)
      c.pointer = fmt::format("/profiles/{}", job.profile_at);
    else if (e.where() == "w_bits" || e.where() == "a_bits")
      c.pointer = "/" + e.where();
    else
      c.pointer = fmt::format("/models/{}", job.model_at);
    c.message = e.what();
  }
  return c;
}

// "" if the data loads as the search loads it, else why not.
std::string check_data(const SearchOptions& o, int64_t classes) {
  try {
    data::DataSpec spec;
    spec.data = o.data;
    spec.num_classes = classes;
    for (data::Split split : {data::Split::train, data::Split::test}) {
      const data::Dataset d = data::load_dataset(spec, split);
      if (d.labels.empty())
        fail(ErrorKind::data, d.source, "labels", "the search needs labelled data");
    }
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::internal) throw;
    return e.what();
  }
  return "";
}

}  // namespace

std::vector<JobProblem> precheck_jobs(const SweepSpec& spec, const std::vector<SweepJob>& jobs,
                                      const fs::path& out, Shard shard) {
  std::map<std::pair<std::string, std::string>, PairCheck> pairs;
  std::map<int64_t, std::string> data_checks;  // output size -> error ("" if fine)
  std::vector<JobProblem> problems;
  for (const auto& job : jobs) {
    if (!in_shard(job.index, shard) || job_complete(out / job.id)) continue;
    const SearchOptions o = job_options(spec, job, out / job.id);
    auto add = [&](std::string pointer, std::string message, bool infeasible) {
      problems.push_back({job.index, std::move(pointer), std::move(message), infeasible});
    };
    // A one-budget entry may be a string or a one-element list: point at the entry.
    auto budget_pointer = [&](size_t k) {
      return job.budgets.size() == 1 ? fmt::format("/budgets/{}", job.budgets_at)
                                     : fmt::format("/budgets/{}/{}", job.budgets_at, k);
    };
    auto usage_problem = [&](const std::string& pointer, auto&& check) {
      try {
        check();
        return false;
      } catch (const Error& e) {
        if (e.kind() == ErrorKind::internal) throw;
        add(pointer, pointer.empty() ? e.what() : e.message(), false);
        return true;
      }
    };
    bool bad = false;
    for (size_t k = 0; k < job.budgets.size(); ++k)
      bad |= usage_problem(budget_pointer(k), [&] { (void)parse_budgets(job.budgets[k]); });
    if (bad || usage_problem("", [&] { check_search_options(o); })) continue;

    auto [it, fresh] = pairs.try_emplace({job.model, job.profile});
    if (fresh) it->second = check_pair(o, job);
    const PairCheck& pair = it->second;
    if (!pair.target) {
      add(pair.pointer, pair.message, false);
      continue;
    }
    auto [dit, dfresh] = data_checks.try_emplace(pair.classes);
    if (dfresh) dit->second = check_data(o, pair.classes);
    if (!dit->second.empty()) {
      add("/data", dit->second, false);
      continue;
    }
    // Feasibility: the very check of the search. To point at the budget that
    // fails, each is tried alone; if every one holds alone, the list itself
    // is at fault (the same metric twice).
    auto resolves = [&](const std::vector<std::string>& budgets, std::string* why) {
      SearchOptions one = o;
      one.budgets = budgets;
      try {
        (void)resolve_search_budgets(one, pair.target->problem);
        return true;
      } catch (const Error& e) {
        if (e.kind() == ErrorKind::internal) throw;
        *why = e.message();
        return false;
      }
    };
    std::string why;
    if (resolves(job.budgets, &why)) continue;
    bool found = false;
    for (size_t k = 0; k < job.budgets.size() && !found; ++k) {
      std::string alone;
      if (!resolves({job.budgets[k]}, &alone)) {
        add(budget_pointer(k), alone, true);
        found = true;
      }
    }
    if (!found) add(fmt::format("/budgets/{}", job.budgets_at), why, false);
  }
  return problems;
}

std::vector<std::string> problem_lines(const SweepSpec& spec, const std::vector<SweepJob>& jobs,
                                       const std::vector<JobProblem>& problems) {
  std::vector<std::string> lines;
  std::vector<std::pair<const JobProblem*, std::vector<int>>>
      shared;  // bad inputs, first seen first
  for (const auto& p : problems) {
    if (p.infeasible) continue;
    auto it = std::find_if(shared.begin(), shared.end(), [&](const auto& s) {
      return s.first->pointer == p.pointer && s.first->message == p.message;
    });
    if (it == shared.end())
      shared.push_back({&p, {p.index}});
    else
      it->second.push_back(p.index);
  }
  for (const auto& [p, indices] : shared) {
    if (indices.size() == 1) {
      lines.push_back(format_problem(spec, jobs.at(static_cast<size_t>(p->index)), *p));
      continue;
    }
    std::vector<int> numbers;
    for (int i : indices) numbers.push_back(i + 1);
    std::string r = spec.file + ": ";
    if (!p->pointer.empty()) r += p->pointer + ": ";
    lines.push_back(r + fmt::format("jobs {}: {}", fmt::join(numbers, ", "), p->message));
  }
  for (const auto& p : problems)
    if (p.infeasible)
      lines.push_back(format_problem(spec, jobs.at(static_cast<size_t>(p.index)), p));
  return lines;
}

SweepSummary run_sweep(const SweepSpec& spec, const fs::path& out, Shard shard,
                       const JobRunner& runner, bool quiet,
                       const std::vector<JobProblem>& infeasible) {
  const std::vector<SweepJob> jobs = expand_jobs(spec);
  std::set<int> not_run;
  for (const auto& p : infeasible) not_run.insert(p.index);
  ensure_output_dir(out);
  // Every shard writes the same bytes, so concurrent shards may race here harmlessly.
  write_file_atomic(out / "sweep.json", sweep_json(spec, jobs).dump(2) + "\n");
  SweepSummary sum;
  sum.total = static_cast<int>(jobs.size());
  for (const auto& job : jobs) {
    if (!in_shard(job.index, shard)) continue;
    ++sum.in_shard;
    const fs::path dir = out / job.id;
    if (job_complete(dir)) {
      ++sum.skipped;
      if (!quiet)
        fmt::print(stderr, "[{}/{}] {}: complete, skipped\n", job.index + 1, sum.total, job.id);
      continue;
    }
    if (not_run.count(job.index)) {
      sum.infeasible.push_back(job.index);
      if (!quiet)
        fmt::print(stderr, "[{}/{}] {}: infeasible budget, not run\n", job.index + 1, sum.total,
                   job.id);
      continue;
    }
    SearchOptions o = job_options(spec, job, dir);
    if (!quiet)
      fmt::print(stderr, "[{}/{}] {}: {}\n", job.index + 1, sum.total, job.id,
                 o.resume ? "resuming from its checkpoint" : "searching");
    bool found = false;
    try {
      found = runner(o);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::internal) throw;
      throw Error(e.kind(), spec.file, fmt::format("job {} ({})", job.index + 1, describe_job(job)),
                  e.what());
    }
    if (stop_requested()) {
      // The search stopped early at the user's request: not complete.
      sum.stopped = true;
      break;
    }
    ++sum.ran;
    if (!found) ++sum.no_policy;
    // The job's identity goes in too, so that merge can list a search that
    // found no policy (it has no policy.json).
    nlohmann::json done = {
        {"id", job.id},       {"index", job.index},     {"status", found ? "policy" : "no-policy"},
        {"model", job.model}, {"profile", job.profile}, {"budgets", job.budgets},
        {"algo", job.algo},   {"seed", job.seed}};
    // A search that fails its checks may not have made the folder; the lock
    // keeps a second sweep on the same job out while it is marked done.
    const OutputDirLock job_lock = lock_output_dir(dir);
    write_file_atomic(dir / "job.json", done.dump(2) + "\n");
  }
  return sum;
}

std::vector<MergedJob> find_merged_jobs(const std::vector<std::string>& dirs) {
  std::vector<fs::path> files;
  for (const auto& d : dirs) {
    if (!path_is_directory(d)) fail(ErrorKind::usage, d, "", "not a folder");
    std::error_code ec;
    fs::recursive_directory_iterator it(d, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      const fs::directory_entry& e = *it;
      std::error_code ec2;
      const bool regular = e.is_regular_file(ec2);
      if (regular && e.path().filename() == "policy.json") {
        // A sweep job stopped by a signal may hold the policy of a cut-short
        // search: only jobs marked complete count.
        const fs::path job = e.path().parent_path();
        if (path_exists(job.parent_path() / "sweep.json") && !job_complete(job)) continue;
        files.push_back(e.path());
      } else if (regular && e.path().filename() == "job.json" &&
                 !path_exists(e.path().parent_path() / "policy.json")) {
        files.push_back(e.path());  // a sweep job that found no policy
      }
    }
    if (ec) fail(ErrorKind::io, d, "", "cannot list the folder: {}", ec.message());
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  std::vector<MergedJob> jobs;
  for (const auto& f : files) {
    const std::string name = f.string();
    JsonValue root = read_json_file(name, ErrorKind::policy);
    const nlohmann::json& j = root.raw();
    MergedJob m;
    m.dir = f.parent_path().string();
    if (f.filename() == "job.json") {
      const WrittenJson w{j, name, ErrorKind::config, "a job marker written by haq sweep"};
      if (w.str("/status") != "no-policy") continue;
      m.status = "no-policy";
      m.model_file = w.str("/model");
      m.model = stem_of(m.model_file);
      m.profile_file = w.str("/profile");
      m.profile = stem_of(m.profile_file);
      m.budget = budget_id(w.budgets("/budgets", false));
      m.algo = w.str("/algo");
      m.seed = w.seed("/seed");
      jobs.push_back(m);
      continue;
    }
    // policy.json keeps its metadata at the top level.
    const WrittenJson w{j, name, ErrorKind::policy, "a policy written by haq search"};
    m.model_file = w.str("/model");
    m.model = stem_of(m.model_file);
    m.profile_file = w.str("/profile/file");
    m.profile = stem_of(m.profile_file);
    m.budget = budget_id(w.budgets("/budgets", true));
    m.algo = w.str("/algo");
    m.seed = w.seed("/seed");
    m.acc_test = w.number("/accuracy/chosen/test");
    m.acc_fp32 = w.number("/accuracy/fp32/test");
    m.acc_w8a8 = w.number("/accuracy/w8a8/test");
    m.latency_s = w.number("/totals/latency_s");
    m.energy_pj = w.number("/totals/energy_pj");
    m.size_bits = w.number("/totals/size_bits");
    m.latency_ratio = w.number("/totals/latency_ratio");
    m.energy_ratio = w.number("/totals/energy_ratio");
    m.size_ratio = w.number("/totals/size_ratio");
    jobs.push_back(m);
  }
  std::stable_sort(jobs.begin(), jobs.end(), [](const MergedJob& a, const MergedJob& b) {
    return std::tie(a.model, a.profile, a.budget, a.algo, a.seed, a.dir) <
           std::tie(b.model, b.profile, b.budget, b.algo, b.seed, b.dir);
  });
  return jobs;
}

std::vector<CrossCell> cross_matrix(const std::vector<MergedJob>& jobs) {
  // Per model: its graph and the cost table of every profile seen with it.
  std::map<std::string, std::map<std::string, std::string>> profiles_of;  // model -> name -> file
  std::map<std::string, std::string> model_file;
  for (const auto& j : jobs) {
    if (j.status != "policy") continue;
    profiles_of[j.model].emplace(j.profile, j.profile_file);
    model_file.emplace(j.model, j.model_file);
  }
  std::map<std::pair<std::string, std::string>, hw::CostTable> tables;
  std::map<std::string, model::Graph> graphs;
  for (const auto& [model, profs] : profiles_of) {
    graphs.emplace(model, model::import_onnx(model_file.at(model)));
    for (const auto& [pname, pfile] : profs)
      tables.emplace(std::make_pair(model, pname),
                     hw::build_cost_table(graphs.at(model), hw::load_profile(pfile)));
  }
  std::vector<CrossCell> cells;
  for (const auto& j : jobs) {
    if (j.status != "policy") continue;
    const model::Graph& g = graphs.at(j.model);
    const quant::Policy policy = quant::load_policy((fs::path(j.dir) / "policy.json").string(), g);
    for (const auto& [pname, pfile] : profiles_of.at(j.model)) {
      const hw::CostTable& t = tables.at({j.model, pname});
      const hw::CostReport r = hw::evaluate(t, policy);
      const hw::CostReport ref = hw::evaluate_max_bits(t);
      CrossCell c;
      c.model = j.model;
      c.budget = j.budget;
      c.algo = j.algo;
      c.seed = j.seed;
      c.tuned_for = j.profile;
      c.measured_on = pname;
      c.latency_s = r.latency_s;
      c.energy_pj = r.energy_pj;
      c.latency_ratio = ref.latency_s > 0 ? r.latency_s / ref.latency_s : 0;
      c.energy_ratio = ref.energy_pj > 0 ? r.energy_pj / ref.energy_pj : 0;
      cells.push_back(c);
    }
  }
  return cells;
}

void write_merge(const std::vector<MergedJob>& jobs, const std::vector<CrossCell>& cross,
                 const fs::path& out) {
  const OutputDirLock lock = lock_output_dir(out);
  std::ostringstream csv;
  csv << "model,profile,budget,algo,seed,acc_test_pct,acc_fp32_pct,acc_w8a8_pct,latency_s,energy_"
         "pj,size_bits,"
         "latency_ratio,energy_ratio,size_ratio,status,dir\n";
  for (const auto& j : jobs) {
    csv << csv_field(j.model) << ',' << csv_field(j.profile) << ',' << csv_field(j.budget) << ','
        << csv_field(j.algo) << ',' << j.seed << ',';
    if (j.status == "policy")
      csv << num(j.acc_test) << ',' << num(j.acc_fp32) << ',' << num(j.acc_w8a8) << ','
          << num(j.latency_s) << ',' << num(j.energy_pj) << ',' << num(j.size_bits) << ','
          << num(j.latency_ratio) << ',' << num(j.energy_ratio) << ',' << num(j.size_ratio) << ',';
    else
      csv << ",,,,,,,,,";  // no policy: no figures
    csv << j.status << ',' << csv_field(j.dir) << '\n';
  }
  std::ostringstream xcsv;
  xcsv << "model,budget,algo,seed,tuned_for,measured_on,latency_s,energy_pj,latency_ratio_w8a8,"
          "energy_ratio_w8a8\n";
  for (const auto& c : cross)
    xcsv << csv_field(c.model) << ',' << csv_field(c.budget) << ',' << csv_field(c.algo) << ','
         << c.seed << ',' << csv_field(c.tuned_for) << ',' << csv_field(c.measured_on) << ','
         << num(c.latency_s) << ',' << num(c.energy_pj) << ',' << num(c.latency_ratio) << ','
         << num(c.energy_ratio) << '\n';

  std::ostringstream md;
  md << "# haq merge\n\n" << jobs.size() << " searches.\n\n## Searches\n\n";
  md << "| model | profile | budget | algo | seed | test top-1 % | fp32 % | w8a8 % | latency ms | "
        "energy uJ | size KiB "
        "| latency / w8a8 | energy / w8a8 | size / w8a8 |\n";
  md << "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& j : jobs) {
    if (j.status != "policy") {
      md << fmt::format(
          "| {} | {} | {} | {} | {} | no policy within the budgets | | | | | | | | |\n", md_cell(j.model),
          md_cell(j.profile), md_cell(j.budget), md_cell(j.algo), j.seed);
      continue;
    }
    md << fmt::format(
        "| {} | {} | {} | {} | {} | {:.2f} | {:.2f} | {:.2f} | {:.4g} | {:.4g} | {:.1f} | {:.3f} | "
        "{:.3f} | {:.3f} |\n",
        md_cell(j.model), md_cell(j.profile), md_cell(j.budget), md_cell(j.algo), j.seed, j.acc_test,
        j.acc_fp32, j.acc_w8a8,
        j.latency_s * 1e3, j.energy_pj * 1e-6, j.size_bits / 8192.0, j.latency_ratio,
        j.energy_ratio, j.size_ratio);
  }
  md << "\n## Cross-hardware: policy tuned for one target, measured on another\n\n"
        "Each cell: latency in ms (and its ratio to the measuring target's all-8-bit policy) / "
        "energy ratio. "
        "The diagonal is the target the policy was tuned for.\n";
  // Group rows by (model, budget, algo, seed); cells arrive grouped by job.
  std::map<std::tuple<std::string, std::string, std::string, uint64_t>,
           std::vector<const CrossCell*>>
      groups;
  for (const auto& c : cross) groups[{c.model, c.budget, c.algo, c.seed}].push_back(&c);
  for (const auto& [key, cells] : groups) {
    const auto& [model, budget, algo, seed] = key;
    std::vector<std::string> cols;
    for (const auto* c : cells)
      if (std::find(cols.begin(), cols.end(), c->measured_on) == cols.end())
        cols.push_back(c->measured_on);
    std::sort(cols.begin(), cols.end());
    md << fmt::format("\n### {}, {}, {}, seed {}\n\n| tuned for \\ measured on |", md_cell(model),
                      md_cell(budget), md_cell(algo), seed);
    for (const auto& c : cols) md << ' ' << md_cell(c) << " |";
    md << "\n|---|";
    for (size_t i = 0; i < cols.size(); ++i) md << "---:|";
    md << '\n';
    std::map<std::string, std::map<std::string, const CrossCell*>> rows;
    for (const auto* c : cells) rows[c->tuned_for][c->measured_on] = c;
    for (const auto& [tuned, row] : rows) {
      md << "| " << md_cell(tuned) << " |";
      for (const auto& col : cols) {
        auto it = row.find(col);
        if (it == row.end()) {
          md << " - |";
          continue;
        }
        const CrossCell& c = *it->second;
        md << fmt::format(" {:.4g} ({:.3f}x) / {:.3f}x |", c.latency_s * 1e3, c.latency_ratio,
                          c.energy_ratio);
      }
      md << '\n';
    }
  }
  write_file_atomic(out / "merged.csv", csv.str());
  write_file_atomic(out / "cross.csv", xcsv.str());
  write_file_atomic(out / "merged.md", md.str());
}

}  // namespace haq::search
