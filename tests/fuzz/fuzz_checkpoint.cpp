// Fuzz target: the search checkpoint reader (checkpoint/state.bin, what
// --resume reads) with the agent state behind it. The first byte picks the
// agent (ddpg with 16 hidden units, random, greedy, knapsack, in
// agent_names() order); the rest is the file. The search identity is taken
// from the file itself, so that mutations get past the identity check to the
// counts and the agent's state. The problem is the unit tests' synthetic one
// (tests/unit/search/fake_problem.h): five layers, no model needed.
#include <istream>
#include <sstream>
#include <string>

#include "../unit/search/fake_problem.h"
#include "fuzz_harness.h"
#include "haq/core/error.h"
#include "haq/search/agent.h"
#include "haq/search/mlp.h"
#include "haq/search/search.h"

namespace haq::fuzz {

/// The agent options the checkpoint seeds were written with.
search::DdpgOptions fuzz_ddpg_options() {
  search::DdpgOptions d;
  d.hidden = 16;
  d.batch = 8;
  d.replay_per_layer = 8;
  d.warmup = 2;
  return d;
}

Outcome run_checkpoint(const uint8_t* data, size_t size) {
  static const search::SearchProblem problem = search::fake::fake_problem();
  static const search::Environment env(problem.layers, problem.costs, problem.budgets, problem.w_range,
                                       problem.a_range);
  static const std::string file = (work_dir() / "state.bin").string();
  const auto& names = search::agent_names();
  const std::string algo = size > 0 ? names[data[0] % names.size()] : names[0];
  const uint8_t* bytes = size > 0 ? data + 1 : data;
  const size_t n = size > 0 ? size - 1 : 0;
  write_bytes(file, bytes, n);
  // The identity the file claims (magic, then a length-prefixed string).
  std::string identity;
  try {
    std::istringstream in(std::string(reinterpret_cast<const char*>(bytes), n), std::ios::binary);
    char magic[8];
    if (in.read(magic, 8)) identity = search::bin::read_string(in);
  } catch (const Error&) {
  }
  return guarded([&] {
    auto agent = search::make_agent(algo, env, 0, fuzz_ddpg_options());
    search::SearchResult r;
    search::load_checkpoint(file, identity, r, *agent);
  });
}

}  // namespace haq::fuzz

HAQ_FUZZ_TARGET(haq::fuzz::run_checkpoint)
