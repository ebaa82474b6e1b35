// The four agents: ddpg (HAQ), random, greedy and knapsack.

#include <algorithm>
#include <cmath>
#include <istream>
#include <limits>
#include <ostream>
#include <sstream>

#include "haq/core/error.h"
#include "haq/core/rng.h"
#include "haq/search/agent.h"

namespace haq::search {

namespace {

void save_bits(std::ostream& out, const BitsVector& bits) {
  bin::write_u64(out, bits.size());
  for (const auto& b : bits) {
    bin::write_u64(out, static_cast<uint64_t>(b.w));
    bin::write_u64(out, static_cast<uint64_t>(b.a));
  }
}

BitsVector load_bits(std::istream& in) {
  BitsVector bits(bin::read_count(in, 16));
  for (auto& b : bits) {
    b.w = static_cast<int>(bin::read_u64(in));
    b.a = static_cast<int>(bin::read_u64(in));
  }
  return bits;
}

void save_rng(std::ostream& out, const std::mt19937_64& rng) {
  std::ostringstream s;
  s << rng;
  bin::write_string(out, s.str());
}

void load_rng(std::istream& in, std::mt19937_64& rng) {
  std::istringstream s(bin::read_string(in));
  s >> rng;
  if (!s) fail(ErrorKind::io, "", "checkpoint", "corrupt random-number state");
}

// Uniform actions for every decision of an episode.
std::vector<float> random_actions(const Environment& env, std::mt19937_64& rng) {
  std::vector<float> a(env.num_decisions());
  for (auto& x : a) x = static_cast<float>(uniform01(rng));
  return a;
}

// ---------------------------------------------------------------- random
class RandomAgent : public Agent {
 public:
  RandomAgent(const Environment& env, uint64_t seed) : env_(env), rng_(make_rng(seed, "random")) {}
  std::string name() const override { return "random"; }
  std::optional<Proposal> ask(int, int) override {
    Proposal p;
    p.actions = random_actions(env_, rng_);
    p.bits = env_.enforce_budgets(env_.actions_to_bits(p.actions));
    p.phase = "random";
    return p;
  }
  void tell(const Proposal&, double, double) override {}
  void save(std::ostream& out) const override { save_rng(out, rng_); }
  void load(std::istream& in) override { load_rng(in, rng_); }

 private:
  const Environment& env_;
  std::mt19937_64 rng_;
};

// ---------------------------------------------------------------- ddpg
class DdpgAgent : public Agent {
 public:
  DdpgAgent(const Environment& env, uint64_t seed, const DdpgOptions& o)
      : env_(env), o_(o), rng_(make_rng(seed, "ddpg")) {
    const int h = o.hidden;
    actor_ = Mlp({kStateDim, h, h, 1}, OutputActivation::sigmoid, rng_);
    critic_ = Mlp({kStateDim + 1, h, h, 1}, OutputActivation::linear, rng_);
    actor_target_ = actor_;
    critic_target_ = critic_;
    actor_opt_ = Adam(actor_.params().size(), o.lr_actor);
    critic_opt_ = Adam(critic_.params().size(), o.lr_critic);
    capacity_ = static_cast<size_t>(o.replay_per_layer) * env.num_layers();
  }
  std::string name() const override { return "ddpg"; }

  std::optional<Proposal> ask(int episode, int) override {
    episode_ = episode;
    Proposal p;
    p.phase = episode < o_.warmup ? "warmup" : "explore";
    states_.clear();
    float prev = 0.f;
    const double sigma =
        o_.sigma * std::pow(o_.sigma_decay, std::max(0, episode - o_.warmup));
    for (size_t t = 0; t < env_.num_decisions(); ++t) {
      State s = env_.state(t, prev);
      states_.push_back(s);
      float a;
      if (episode < o_.warmup) {
        a = static_cast<float>(uniform01(rng_));
      } else {
        double mu = actor_.forward(s.data(), 1)[0];
        a = static_cast<float>(truncated_normal(mu, sigma));
      }
      p.actions.push_back(a);
      prev = a;
    }
    p.bits = env_.enforce_budgets(env_.actions_to_bits(p.actions));
    return p;
  }

  void tell(const Proposal& p, double, double reward) override {
    const size_t n = p.actions.size();
    for (size_t t = 0; t < n; ++t) {
      Transition tr;
      tr.s = states_[t];
      tr.a = p.actions[t];
      tr.r = static_cast<float>(reward);
      tr.done = t + 1 == n;
      tr.s2 = tr.done ? states_[t] : states_[t + 1];
      push(tr);
      if (episode_ >= o_.warmup)
        for (int u = 0; u < o_.updates_per_step; ++u) update();
    }
  }

  void save(std::ostream& out) const override {
    actor_.save(out);
    critic_.save(out);
    actor_target_.save(out);
    critic_target_.save(out);
    actor_opt_.save(out);
    critic_opt_.save(out);
    save_rng(out, rng_);
    bin::write_u64(out, has_baseline_ ? 1 : 0);
    bin::write_f64(out, baseline_);
    bin::write_u64(out, next_);
    bin::write_u64(out, replay_.size());
    for (const auto& tr : replay_) {
      std::vector<float> v(tr.s.begin(), tr.s.end());
      v.insert(v.end(), tr.s2.begin(), tr.s2.end());
      v.push_back(tr.a);
      v.push_back(tr.r);
      v.push_back(tr.done ? 1.f : 0.f);
      bin::write_floats(out, v);
    }
  }

  void load(std::istream& in) override {
    actor_.load(in);
    critic_.load(in);
    actor_target_.load(in);
    critic_target_.load(in);
    actor_opt_.load(in);
    critic_opt_.load(in);
    load_rng(in, rng_);
    has_baseline_ = bin::read_u64(in) != 0;
    baseline_ = bin::read_f64(in);
    next_ = bin::read_u64(in);
    size_t n = bin::read_u64(in);
    if (n > capacity_) fail(ErrorKind::io, "", "checkpoint", "replay buffer larger than its capacity");
    replay_.clear();
    for (size_t i = 0; i < n; ++i) {
      auto v = bin::read_floats(in);
      if (v.size() != 2 * kStateDim + 3) fail(ErrorKind::io, "", "checkpoint", "corrupt transition");
      Transition tr;
      std::copy(v.begin(), v.begin() + kStateDim, tr.s.begin());
      std::copy(v.begin() + kStateDim, v.begin() + 2 * kStateDim, tr.s2.begin());
      tr.a = v[2 * kStateDim];
      tr.r = v[2 * kStateDim + 1];
      tr.done = v[2 * kStateDim + 2] != 0.f;
      replay_.push_back(tr);
    }
  }

 private:
  struct Transition {
    State s{}, s2{};
    float a = 0, r = 0;
    bool done = false;
  };

  double truncated_normal(double mu, double sigma) {
    for (int i = 0; i < 1000; ++i) {
      double x = mu + sigma * standard_normal(rng_);
      if (x >= 0.0 && x <= 1.0) return x;
    }
    return std::clamp(mu, 0.0, 1.0);
  }

  void push(const Transition& tr) {
    if (replay_.size() < capacity_) {
      replay_.push_back(tr);
    } else {
      replay_[next_] = tr;
      next_ = (next_ + 1) % capacity_;
    }
  }

  void update() {
    const int B = o_.batch;
    const int S = kStateDim;
    s_.resize(static_cast<size_t>(B) * S);
    sa_.resize(static_cast<size_t>(B) * (S + 1));
    s2a_.resize(static_cast<size_t>(B) * (S + 1));
    r_.resize(B);
    done_.resize(B);
    double mean = 0;
    for (int b = 0; b < B; ++b) {
      size_t idx = static_cast<size_t>(uniform01(rng_) * replay_.size());
      if (idx >= replay_.size()) idx = replay_.size() - 1;
      const auto& tr = replay_[idx];
      std::copy(tr.s.begin(), tr.s.end(), s_.begin() + b * S);
      std::copy(tr.s.begin(), tr.s.end(), sa_.begin() + b * (S + 1));
      sa_[b * (S + 1) + S] = tr.a;
      std::copy(tr.s2.begin(), tr.s2.end(), s2a_.begin() + b * (S + 1));
      r_[b] = tr.r;
      done_[b] = tr.done ? 1.f : 0.f;
      mean += tr.r;
    }
    // Moving-average baseline of the reward, as the reference normalises it.
    mean /= B;
    if (!has_baseline_) {
      baseline_ = mean;
      has_baseline_ = true;
    } else {
      baseline_ += o_.baseline_alpha * (mean - baseline_);
    }
    // Critic target: r - baseline + gamma (1 - done) Q'(s', mu'(s')).
    std::vector<float> s2(static_cast<size_t>(B) * S);
    for (int b = 0; b < B; ++b)
      std::copy(s2a_.begin() + b * (S + 1), s2a_.begin() + b * (S + 1) + S, s2.begin() + b * S);
    const auto& mu2 = actor_target_.forward(s2.data(), B);
    for (int b = 0; b < B; ++b) s2a_[b * (S + 1) + S] = mu2[b];
    const auto& q2 = critic_target_.forward(s2a_.data(), B);
    std::vector<float> y(B);
    for (int b = 0; b < B; ++b)
      y[b] = static_cast<float>(r_[b] - baseline_) + o_.discount * (1.f - done_[b]) * q2[b];
    // Critic step on the mean squared error.
    const auto& q = critic_.forward(sa_.data(), B);
    std::vector<float> dq(B);
    for (int b = 0; b < B; ++b) dq[b] = 2.f * (q[b] - y[b]) / static_cast<float>(B);
    critic_.zero_grads();
    critic_.backward(dq.data(), true, nullptr);
    critic_opt_.step(critic_.params(), critic_.grads());
    // Actor step: maximise Q(s, mu(s)).
    const auto& mu = actor_.forward(s_.data(), B);
    for (int b = 0; b < B; ++b) sa_[b * (S + 1) + S] = mu[b];
    critic_.forward(sa_.data(), B);
    std::vector<float> dneg(B, -1.f / static_cast<float>(B));
    std::vector<float> dx;
    critic_.backward(dneg.data(), false, &dx);
    std::vector<float> dmu(B);
    for (int b = 0; b < B; ++b) dmu[b] = dx[b * (S + 1) + S];
    actor_.zero_grads();
    actor_.backward(dmu.data(), true, nullptr);
    actor_opt_.step(actor_.params(), actor_.grads());
    actor_target_.soft_update(actor_, o_.tau);
    critic_target_.soft_update(critic_, o_.tau);
  }

  const Environment& env_;
  DdpgOptions o_;
  std::mt19937_64 rng_;
  Mlp actor_, critic_, actor_target_, critic_target_;
  Adam actor_opt_, critic_opt_;
  size_t capacity_ = 0, next_ = 0;
  std::vector<Transition> replay_;
  bool has_baseline_ = false;
  double baseline_ = 0;
  int episode_ = 0;
  std::vector<State> states_;
  std::vector<float> s_, sa_, s2a_, r_, done_;
};

// ------------------------------------------------- sensitivity-based agents
// Greedy and knapsack are deterministic functions of what they were told, so
// their checkpoint is that history, replayed on load.
class PlanningAgent : public Agent {
 public:
  explicit PlanningAgent(const Environment& env) : env_(env) {}

  std::optional<Proposal> ask(int episode, int budget_left) override {
    if (probes_.empty() && !planned_) make_probes(budget_left);
    last_budget_left_ = budget_left;
    if (probe_next_ < probes_.size()) {
      Proposal p;
      p.bits = probes_[probe_next_];
      p.phase = "sensitivity";
      return p;
    }
    if (!planned_) {
      plan_ = make_plan(sensitivity(), budget_left);
      planned_ = true;
    }
    (void)episode;
    if (plan_next_ < plan_.size()) {
      Proposal p;
      p.bits = plan_[plan_next_];
      p.phase = plan_phase(plan_next_);
      return p;
    }
    return std::nullopt;
  }

  void tell(const Proposal& p, double accuracy_pct, double) override {
    history_.push_back({p.bits, accuracy_pct, last_budget_left_, p.phase});
    if (probe_next_ < probes_.size()) {
      probe_acc_.push_back(accuracy_pct);
      ++probe_next_;
    } else {
      ++plan_next_;
    }
  }

  void save(std::ostream& out) const override {
    bin::write_u64(out, history_.size());
    for (const auto& h : history_) {
      save_bits(out, h.bits);
      bin::write_f64(out, h.acc);
      bin::write_u64(out, static_cast<uint64_t>(h.budget_left));
    }
  }

  void load(std::istream& in) override {
    size_t n = bin::read_u64(in);
    std::vector<Told> saved;
    for (size_t i = 0; i < n; ++i) {
      Told t;
      t.bits = load_bits(in);
      t.acc = bin::read_f64(in);
      t.budget_left = static_cast<int>(bin::read_u64(in));
      saved.push_back(t);
    }
    for (size_t i = 0; i < saved.size(); ++i) {
      auto p = ask(static_cast<int>(i), saved[i].budget_left);
      if (!p || !(p->bits == saved[i].bits))
        fail(ErrorKind::io, "", "checkpoint", "the {} agent's history does not replay", name());
      tell(*p, saved[i].acc, 0);
    }
  }

 protected:
  virtual std::vector<BitsVector> make_plan(const Sensitivity& s, int budget_left) = 0;
  /// What plan entry i is for (search.jsonl's "phase").
  virtual std::string plan_phase(size_t) const { return name(); }
  const Environment& env_;

 private:
  struct Told {
    BitsVector bits;
    double acc = 0;
    int budget_left = 0;
    std::string phase;
  };

  // Probe levels below the maximum: max-1, max-1-step, ..., and the minimum.
  static std::vector<int> levels(BitRange r, int step) {
    std::vector<int> out;
    for (int b = r.max - 1; b > r.min; b -= step) out.push_back(b);
    if (r.min < r.max) out.push_back(r.min);
    return out;
  }

  void make_probes(int budget_left) {
    const size_t n = env_.num_layers();
    const BitRange wr = env_.w_range(), ar = env_.a_range();
    // The finest grid whose probes fit in 3/4 of the evaluations allowed.
    int step = 1;
    for (; step < 8; ++step) {
      size_t count = 1 + n * (levels(wr, step).size() + levels(ar, step).size());
      if (static_cast<double>(count) <= 0.75 * budget_left) break;
    }
    w_levels_ = levels(wr, step);
    a_levels_ = levels(ar, step);
    const BitsVector top(n, Bits{wr.max, ar.max});
    probes_.push_back(top);
    for (size_t l = 0; l < n; ++l) {
      for (int b : w_levels_) {
        auto bits = top;
        bits[l].w = b;
        probes_.push_back(bits);
      }
      for (int b : a_levels_) {
        auto bits = top;
        bits[l].a = b;
        probes_.push_back(bits);
      }
    }
  }

  // Losses at probed levels, linear in between, made non-increasing in bits.
  static void fill(std::array<double, 9>& loss, const std::vector<std::pair<int, double>>& known,
                   BitRange r) {
    std::vector<std::pair<int, double>> pts = known;
    pts.push_back({r.max, 0.0});
    std::sort(pts.begin(), pts.end());
    loss.fill(0.0);
    for (int b = r.min; b <= r.max; ++b) {
      auto hi = std::lower_bound(pts.begin(), pts.end(), std::make_pair(b, -1e300));
      if (hi == pts.end()) continue;
      if (hi->first == b || hi == pts.begin()) {
        loss[b] = hi->second;
        continue;
      }
      auto lo = hi - 1;
      double t = static_cast<double>(b - lo->first) / (hi->first - lo->first);
      loss[b] = lo->second + t * (hi->second - lo->second);
    }
    for (int b = r.max - 1; b >= r.min; --b) loss[b] = std::max(loss[b], loss[b + 1]);
    for (int b = 0; b < r.min; ++b) loss[b] = loss[r.min];
  }

  Sensitivity sensitivity() const {
    Sensitivity s;
    const size_t n = env_.num_layers();
    s.reference_pct = probe_acc_.at(0);
    s.loss_w.resize(n);
    s.loss_a.resize(n);
    size_t k = 1;
    for (size_t l = 0; l < n; ++l) {
      std::vector<std::pair<int, double>> w, a;
      for (int b : w_levels_) w.push_back({b, std::max(0.0, s.reference_pct - probe_acc_.at(k++))});
      for (int b : a_levels_) a.push_back({b, std::max(0.0, s.reference_pct - probe_acc_.at(k++))});
      fill(s.loss_w[l], w, env_.w_range());
      fill(s.loss_a[l], a, env_.a_range());
    }
    return s;
  }

  std::vector<BitsVector> probes_;
  std::vector<double> probe_acc_;
  std::vector<int> w_levels_, a_levels_;
  size_t probe_next_ = 0, plan_next_ = 0;
  bool planned_ = false;
  std::vector<BitsVector> plan_;
  std::vector<Told> history_;
  int last_budget_left_ = 0;
};

class GreedyAgent : public PlanningAgent {
 public:
  using PlanningAgent::PlanningAgent;
  std::string name() const override { return "greedy"; }

 protected:
  // Entry 0 is the walk's feasible end; the others are earlier (over-budget) steps.
  std::string plan_phase(size_t i) const override { return i == 0 ? "greedy" : "greedy-walk"; }
  // The walk's end (the feasible policy) first, then earlier steps evenly
  // spread, as evaluations allow: they are points for the front.
  std::vector<BitsVector> make_plan(const Sensitivity& s, int budget_left) override {
    auto walk = greedy_walk(env_, s);
    std::vector<BitsVector> plan;
    if (walk.empty()) return plan;
    plan.push_back(walk.back());
    int extra = std::min<int>(budget_left - 1, static_cast<int>(walk.size()) - 1);
    for (int i = 0; i < extra; ++i) {
      size_t idx = static_cast<size_t>((i + 1) * (walk.size() - 1) / (extra + 1));
      if (idx < walk.size() - 1 && (plan.empty() || !(plan.back() == walk[idx])))
        plan.push_back(walk[idx]);
    }
    return plan;
  }
};

class KnapsackAgent : public PlanningAgent {
 public:
  using PlanningAgent::PlanningAgent;
  std::string name() const override { return "knapsack"; }

 protected:
  // The solution at the budget, then at slightly tighter budgets: the
  // estimate is additive and optimistic, so the measured best may be a tighter one.
  std::vector<BitsVector> make_plan(const Sensitivity& s, int budget_left) override {
    std::vector<BitsVector> plan;
    const int wanted = std::max(1, std::min(budget_left, 10));
    for (int i = 0; i < 40 && static_cast<int>(plan.size()) < wanted; ++i) {
      auto sol = knapsack_solve(env_, s, 1.0 - 0.025 * i);
      if (!sol) break;
      if (std::find(plan.begin(), plan.end(), *sol) == plan.end()) plan.push_back(*sol);
    }
    if (plan.empty())  // nothing fit the estimate: fall back on HAQ's enforcement
      plan.push_back(env_.enforce_budgets(BitsVector(env_.num_layers(),
                                                     Bits{env_.w_range().max, env_.a_range().max})));
    return plan;
  }
};

}  // namespace

std::vector<BitsVector> greedy_walk(const Environment& env, const Sensitivity& s) {
  const size_t n = env.num_layers();
  BitsVector cur(n, Bits{env.w_range().max, env.a_range().max});
  std::vector<BitsVector> walk{cur};
  while (!env.feasible(cur)) {
    const Costs total = env.total(cur);
    int best_l = -1;
    bool best_w = true;
    double best_score = std::numeric_limits<double>::infinity(), best_save = 0;
    for (size_t l = 0; l < n; ++l) {
      for (int w_side = 1; w_side >= 0; --w_side) {
        Bits nb = cur[l];
        if (w_side) {
          if (nb.w <= env.w_range().min) continue;
          --nb.w;
        } else {
          if (nb.a <= env.a_range().min) continue;
          --nb.a;
        }
        const Costs before = env.costs().layer(l, cur[l].w, cur[l].a);
        const Costs after = env.costs().layer(l, nb.w, nb.a);
        double save = 0;
        for (const auto& b : env.budgets()) {
          if (total.get(b.spec.metric) <= b.limit) continue;  // only what is over budget
          save += (before.get(b.spec.metric) - after.get(b.spec.metric)) / b.limit;
        }
        if (save <= 0) continue;
        double dloss = s.loss(l, nb) - s.loss(l, cur[l]);
        double score = dloss / save;
        if (score < best_score || (score == best_score && save > best_save)) {
          best_score = score;
          best_save = save;
          best_l = static_cast<int>(l);
          best_w = w_side == 1;
        }
      }
    }
    if (best_l < 0) break;
    if (best_w) --cur[best_l].w;
    else --cur[best_l].a;
    walk.push_back(cur);
  }
  return walk;
}

std::optional<BitsVector> knapsack_solve(const Environment& env, const Sensitivity& s,
                                         double scale, int bins) {
  const auto& budgets = env.budgets();
  HAQ_ASSERT(!budgets.empty());
  const size_t n = env.num_layers();
  const BitRange wr = env.w_range(), ar = env.a_range();
  const Metric m = budgets[0].spec.metric;
  std::vector<Bits> choices;  // high bits first: ties keep more bits
  for (int w = wr.max; w >= wr.min; --w)
    for (int a = ar.max; a >= ar.min; --a) choices.push_back({w, a});
  for (int attempt = 0; attempt < 100; ++attempt, scale *= 0.97) {
    const double capacity = budgets[0].limit * scale - env.costs().fixed.get(m);
    if (capacity <= 0) return std::nullopt;
    const double unit = capacity / bins;
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> dp(bins + 1, inf), next(bins + 1);
    dp[0] = 0;
    std::vector<std::vector<int16_t>> pick(n, std::vector<int16_t>(bins + 1, -1));
    for (size_t l = 0; l < n; ++l) {
      std::fill(next.begin(), next.end(), inf);
      for (size_t c = 0; c < choices.size(); ++c) {
        double cost = env.costs().layer(l, choices[c].w, choices[c].a).get(m);
        long wd = static_cast<long>(std::ceil(cost / unit - 1e-9));
        if (wd < 0) wd = 0;
        if (wd > bins) continue;
        double loss = s.loss(l, choices[c]);
        for (long used = 0; used + wd <= bins; ++used) {
          if (dp[used] == inf) continue;
          double v = dp[used] + loss;
          if (v < next[used + wd]) {
            next[used + wd] = v;
            pick[l][used + wd] = static_cast<int16_t>(c);
          }
        }
      }
      std::swap(dp, next);
    }
    long best = -1;
    for (long c = bins; c >= 0; --c)
      if (dp[c] < inf && (best < 0 || dp[c] < dp[best])) best = c;
    if (best < 0) return std::nullopt;
    BitsVector bits(n);
    long c = best;
    for (size_t l = n; l-- > 0;) {
      int16_t k = pick[l][c];
      HAQ_ASSERT(k >= 0);
      bits[l] = choices[k];
      long wd = static_cast<long>(
          std::ceil(env.costs().layer(l, bits[l].w, bits[l].a).get(m) / unit - 1e-9));
      c -= std::max(0L, wd);
    }
    if (env.feasible(bits)) return bits;
  }
  return std::nullopt;
}

const std::vector<std::string>& agent_names() {
  static const std::vector<std::string> names{"ddpg", "random", "greedy", "knapsack"};
  return names;
}

std::unique_ptr<Agent> make_agent(const std::string& name, const Environment& env, uint64_t seed,
                                  const DdpgOptions& ddpg) {
  if (name == "ddpg") return std::make_unique<DdpgAgent>(env, seed, ddpg);
  if (name == "random") return std::make_unique<RandomAgent>(env, seed);
  if (name == "greedy") return std::make_unique<GreedyAgent>(env);
  if (name == "knapsack") return std::make_unique<KnapsackAgent>(env);
  fail(ErrorKind::usage, "", "--algo", "unknown algorithm '{}' (expected ddpg, random, greedy or knapsack)", name);
}

}  // namespace haq::search
