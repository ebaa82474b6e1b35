#pragma once
/// \file
/// Agents behind one ask/tell interface. The search driver asks an agent for
/// the next policy, measures it (through the shared evaluation cache) and
/// tells the agent the accuracy and reward.

#include <iosfwd>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "haq/search/environment.h"
#include "haq/search/mlp.h"

namespace haq::search {

/// What an agent proposes for one episode.
struct Proposal {
  BitsVector bits;             ///< the policy to measure (after budget enforcement, if any)
  std::vector<float> actions;  ///< the agent's raw actions, 2 per layer (ddpg, random)
  std::string phase;           ///< what the evaluation is for ("explore", "sensitivity", ...)
};

/// DDPG hyperparameters (defaults as in the HAQ reference).
struct DdpgOptions {
  int hidden = 300;               ///< units in each of the two hidden layers (actor and critic)
  float lr_actor = 1e-4f;         ///< Adam learning rate of the actor
  float lr_critic = 1e-3f;        ///< Adam learning rate of the critic
  float tau = 0.01f;              ///< target networks' soft-update rate
  float discount = 1.0f;          ///< gamma
  int batch = 64;                 ///< minibatch size
  int replay_per_layer = 128;     ///< replay capacity = this x #layers transitions
  int warmup = 20;                ///< episodes of uniform random actions before learning
  double sigma = 0.5;             ///< initial std-dev of the truncated-normal exploration
  double sigma_decay = 0.99;      ///< sigma = sigma x decay^(episode - warmup)
  double baseline_alpha = 0.5;    ///< moving-average reward baseline's update rate
  int updates_per_step = 1;       ///< gradient updates per stored transition (reference: 1)
};

class Agent {
 public:
  virtual ~Agent() = default;
  /// "ddpg", "random", "greedy", "knapsack".
  virtual std::string name() const = 0;
  /// The next policy to measure for `episode` (0-based), or nullopt when the
  /// agent has nothing more to try. `budget_left` is how many more
  /// evaluations the search allows (agents that plan use it).
  virtual std::optional<Proposal> ask(int episode, int budget_left) = 0;
  /// The measured accuracy (percent, evaluation split) and reward of the last ask.
  virtual void tell(const Proposal& p, double accuracy_pct, double reward) = 0;
  /// Full state, for checkpoints (so that a resumed search continues exactly).
  virtual void save(std::ostream& out) const = 0;
  virtual void load(std::istream& in) = 0;
};

/// Creates an agent by name ("ddpg", "random", "greedy", "knapsack"); Error(usage) otherwise.
/// The environment must outlive it.
std::unique_ptr<Agent> make_agent(const std::string& name, const Environment& env, uint64_t seed,
                                  const DdpgOptions& ddpg = {});

/// Names make_agent knows.
const std::vector<std::string>& agent_names();

/// Sensitivity-based plans shared by greedy and knapsack (exposed for tests).
struct Sensitivity {
  double reference_pct = 0;                ///< accuracy of the all-max policy
  /// loss_w[l][b] / loss_a[l][b]: estimated accuracy loss (points) with layer
  /// l at b weight / activation bits, the rest at the maximum; index 0..8.
  std::vector<std::array<double, 9>> loss_w, loss_a;
  double loss(size_t l, Bits b) const { return loss_w[l][b.w] + loss_a[l][b.a]; }
};

/// Greedy walk: from all-max, repeatedly lower the (layer, w or a) with the
/// smallest estimated loss per normalised cost saved until the budgets hold.
/// Returns every step's bits (the last one feasible).
std::vector<BitsVector> greedy_walk(const Environment& env, const Sensitivity& s);

/// Exact multiple-choice knapsack over per-layer (w, a) with the summed
/// sensitivity loss, under the first budget scaled by `scale` (discretised
/// into `bins`, costs rounded up so the result truly fits); other budgets are
/// met by tightening. nullopt if nothing fits.
std::optional<BitsVector> knapsack_solve(const Environment& env, const Sensitivity& s,
                                         double scale = 1.0, int bins = 4000);

}  // namespace haq::search
