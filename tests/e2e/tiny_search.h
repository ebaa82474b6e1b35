#pragma once
// A tiny search for the e2e tests: fmnist-mlp on bismo-edge, latency <= 0.5x,
// few samples, DDPG learning after 4 warm-up episodes (so that its updates
// are exercised too): seconds per run.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "test_paths.h"

namespace haq::test {

/// Writes DIR/tiny.json, a search config with these sample counts plus
/// `extra` (more JSON members, each followed by a comma), and returns its path.
/// The final choice runs on 1000 samples with 4 moves per refinement round.
inline std::filesystem::path tiny_search_config(const std::filesystem::path& dir, int eval_samples,
                                                int calib_samples, int test_samples,
                                                const std::string& extra = "") {
  std::filesystem::path cfg = dir / "tiny.json";
  std::ofstream(cfg) << fmt::format(
      R"({{"schema": "haq.search/1", "ddpg": {{"warmup": 4, "hidden": 64}}, {}
  "eval_samples": {}, "calib_samples": {}, "test_samples": {}, "batch": 100,
  "select_samples": 1000, "refine_moves": 4}})",
      extra, eval_samples, calib_samples, test_samples);
  return cfg;
}

/// `haq search` arguments for the tiny search with config `cfg`.
inline std::vector<std::string> tiny_search_args(const std::filesystem::path& cfg,
                                                 const std::filesystem::path& out, int episodes,
                                                 int seed) {
  return {"search", source_path("models/fmnist-mlp.onnx"), "--hw",
          source_path("hardware-profiles/bismo-edge.json"), "--data", "fashion-mnist",
          "--budget", "latency<=0.5x", "--config", cfg.string(), "--episodes",
          std::to_string(episodes), "--seed", std::to_string(seed), "--quiet", "--out", out.string()};
}

}  // namespace haq::test
