// The staged bit-serial model (BISMO's fetch / execute / result stages):
// hand-worked closed forms and the behaviours its papers and sources imply.
#include <catch2/catch.hpp>

#include "haq/hw/simulate.h"
#include "hw_test_util.h"
#include "test_paths.h"

using namespace haq;
using namespace haq::hw;
using haq::test::conv_layer;
using haq::test::fc_layer;

namespace {

// Edge-like: 8x256x8, 64-bit read and write channels sharing 84 bits/cycle,
// 2/2/0.25 Mbit buffers, BISMO's pipeline figures.
HardwareProfile staged_profile() {
  HardwareProfile p = haq::test::bit_serial_profile();
  p.memory.dram_bits_per_cycle = 84;
  p.memory.output_bits = 32;
  p.bit_serial.staged = true;
  p.bit_serial.stages = {64, 64, 32, 13, 3, 32};
  return p;
}

}  // namespace

TEST_CASE("bit-serial staged: closed-form cycles and traffic of a hand-worked conv") {
  const HardwareProfile p = staged_profile();
  // 3x3 conv, 64 -> 64, 16x16, pad 1: GEMM M = 256, K = 576, N = 64;
  // padded to whole Dk-bit words: K = 768 (3 words), M and N already whole blocks.
  model::Layer l = conv_layer("c", 64, 64, 3, 1, 16);
  // w4a4. LHS (im2row'd activations) 256*768*4 = 786432 bits, RHS (weights)
  // 64*768*4 = 196608. Result tiles (256/8)*(64/8) = 256 of 8*8*32 = 2048 bits:
  // writes 524288. Execute: 256 tiles * 3 words * 16 bit pairs = 12288 busy
  // cycles + 256 * (13 drain + 4 syncs * 3) = 18688. Result: 256 * (2048/64 + 9) = 10496.
  // DRAM: (983040 + 524288) / 84 = 17944.4 -> 17945.

  // Chunks of all of M and N: everything fetched before the first instruction.
  // Fetch 983040/64 = 15360 + 2 runs * (32 + 6) = 15436; fill = 15360 + 38 = 15398;
  // the last tile: 3*16 + 13 = 61 cycles, its write 32.
  // max(15436 + 61 + 32, 15398 + 18688 + 32, 15398 + 61 + 10496, 17945) = 34118.
  LayerCost all = simulate_tiling(l, 4, 4, p, 256, 768, 64, LoopOrder::weights_outer);
  REQUIRE(all.fits);
  CHECK(all.compute_cycles == 12288);
  CHECK(all.dram_read_bits == 983040);
  CHECK(all.dram_write_bits == 524288);
  CHECK(all.cycles == 34118);
  CHECK(all.mapping.tiles == 256);
  CHECK(all.latency_s == Approx(34118 / 200e6));

  // LHS chunks of one block (8 rows), the weights resident: 32 + 1 fetch runs,
  // fetch 15360 + 33 * 38 = 16614; fill (8*768*4 + 196608)/64 + 38 = 3494.
  // max(16614 + 93, 3494 + 18688 + 32, 3494 + 61 + 10496, 17945) = 22214: the
  // execute stage (its drains and syncs: 6400 of 18688 cycles) bounds.
  LayerCost rows = simulate_tiling(l, 4, 4, p, 8, 768, 64, LoopOrder::weights_outer);
  REQUIRE(rows.fits);
  CHECK(rows.mapping.input_fetches == 1);
  CHECK(rows.mapping.weight_fetches == 1);
  CHECK(rows.dram_read_bits == 983040);
  CHECK(rows.cycles == 22214);
  CHECK(rows.bound == Bound::compute);
  // Energy: useful binary MACs 256*64*576*16 over 12288 cycles of 16384 = 75 %
  // at 10 pJ; SRAM: fills + one 256-bit word per DPU row and column per busy
  // cycle + each accumulator written and read once (2*256*64*32); DRAM 20 pJ/bit.
  CHECK(rows.energy_compute_pj == Approx(9216 * 10.0));
  const double sram = (196608 + 12288.0 * 8 * 256) + (786432 + 12288.0 * 8 * 256) + 2.0 * 256 * 64 * 32;
  CHECK(rows.sram_bits == int64_t(sram));
  CHECK(rows.energy_sram_pj == Approx(sram * 0.1));
  CHECK(rows.energy_dram_pj == Approx(1507328 * 20.0));

  // The mapper is never worse than either, and its chunks fit twice in the buffers.
  LayerCost best = simulate_layer(l, 4, 4, p);
  REQUIRE(best.fits);
  CHECK(best.cycles <= 22214);
  CHECK(2 * best.mapping.tile_k * best.mapping.tile_n * 4 <= p.memory.weight_buffer_bits);
  CHECK(2 * best.mapping.tile_m * best.mapping.tile_k * 4 <= p.memory.input_buffer_bits);
}

TEST_CASE("bit-serial staged: per-tile drains and syncs bound a small-K layer, so latency stops scaling with w*a") {
  const HardwareProfile p = staged_profile();
  // 1x1 conv 16 -> 64 on 32x32: K = 16, one 256-bit word (mostly padding).
  model::Layer l = conv_layer("pw", 16, 64, 1, 1, 32);
  // (1024/8) * (64/8) = 1024 result tiles; each costs w*a busy cycles plus
  // 25 cycles of drain and syncs, and its write-back 32 + 9 cycles.
  const int64_t tiles = 1024;
  LayerCost w8 = simulate_layer(l, 8, 8, p), w1 = simulate_layer(l, 1, 1, p);
  CHECK(w8.compute_cycles == tiles * 64);
  CHECK(w1.compute_cycles == tiles * 1);
  CHECK(w8.cycles >= tiles * (64 + 25));
  // At w1a1 the result stage (41 cycles per tile) is the slowest: not 1/64 of w8a8.
  CHECK(w1.cycles >= tiles * 41);
  CHECK(w1.bound == Bound::memory);
  CHECK(double(w1.cycles) / double(w8.cycles) > 0.4);
}

TEST_CASE("bit-serial staged: a first layer is bound by its padded activation stream, not by the weight bits") {
  const HardwareProfile p = staged_profile();
  // 3x3 conv from 3 channels, 64x64 input, stride 2: M = 32*32 = 1024, K = 27 padded to 256.
  model::Layer l = conv_layer("first", 3, 32, 3, 2, 64);
  for (int a : {8, 4, 2}) {
    INFO("a_bits " << a);
    LayerCost w8 = simulate_layer(l, 8, a, p), w2 = simulate_layer(l, 2, a, p);
    // The LHS alone: 1024 rows x 256 bits x a over the 64-bit read channel.
    CHECK(w8.dram_read_bits >= 1024 * 256 * a);
    CHECK(w2.cycles >= 1024 * 256 * a / 64);
    if (a <= 4) {
      // Fetch-bound: a quarter of the weight bits saves almost nothing.
      CHECK(w2.bound == Bound::memory);
      CHECK(double(w2.cycles) / double(w8.cycles) > 0.75);
    }
  }
}

TEST_CASE("bit-serial staged: a depthwise layer cannot use the reduction depth and its weight bits barely matter") {
  const HardwareProfile p = staged_profile();
  model::Layer dw = conv_layer("dw", 64, 64, 3, 1, 32, 64);
  // Run alone, each channel is a GEMM of K = 9 (one 256-bit word, 3.5 % used), N = 1
  // (one of 8 columns): at w8a8 its array use is a fraction of a percent.
  LayerCost one = simulate_tiling(dw, 8, 8, p, 8, 256, 8, LoopOrder::weights_outer, 1);
  REQUIRE(one.fits);
  CHECK(one.compute_cycles == 64 * (1024 / 8) * 1 * 1 * 64);
  // The mapper packs channels block-diagonally when that is faster; the zeros are real
  // weight bits. Either way, dropping weights from 8 to 2 bits saves under half.
  LayerCost w8 = simulate_layer(dw, 8, 8, p), w2 = simulate_layer(dw, 2, 8, p);
  CHECK(w8.cycles <= one.cycles);
  CHECK(w8.mapping.group_block == w2.mapping.group_block);  // the layout is chosen once
  CHECK(double(w2.cycles) / double(w8.cycles) > 0.5);
}

TEST_CASE("bit-serial staged: a fully connected layer at batch 1 is bound by the weight stream") {
  const HardwareProfile p = staged_profile();
  model::Layer fc = fc_layer("fc", 1280, 1000);
  for (int w : {8, 4, 2}) {
    INFO("w_bits " << w);
    LayerCost c = simulate_layer(fc, w, 8, p);
    // The weights, padded to 1000 x 1280 (1280 = 5 words), cross the 64-bit read channel once.
    const int64_t rhs = 1000 * 1280 * w;
    CHECK(c.dram_read_bits >= rhs);
    CHECK(c.cycles >= rhs / 64);
    CHECK(c.bound == Bound::memory);
    CHECK(c.cycles <= rhs / 64 * 1.2);
  }
}

TEST_CASE("bit-serial staged: the shipped BISMO profiles are staged and their stage figures come from BISMO's sources") {
  for (const char* name : {"bismo-edge", "bismo-cloud"}) {
    INFO(name);
    HardwareProfile p = load_profile(haq::test::source_path(std::string("hardware-profiles/") + name + ".json"));
    REQUIRE(p.bit_serial.staged);
    // ExecStage latency: BRAM read 3 + DPA 1 + DPU 5 + compressor depth (4 at Dk 256, 5 at 512).
    CHECK(p.bit_serial.stages.exec_latency_cycles == 3 + 1 + 5 + (p.bit_serial.dk == 256 ? 4 : 5));
    CHECK(p.bit_serial.stages.result_bits == 32);
    CHECK(p.bit_serial.stages.sync_cycles == 3);
    CHECK(p.memory.output_bits == 32);
    // One memory port: the read channel and the write channel both at most the DRAM's peak.
    CHECK(p.bit_serial.stages.fetch_bits_per_cycle <= p.memory.dram_bits_per_cycle);
    CHECK(p.bit_serial.stages.result_bits_per_cycle <= p.memory.dram_bits_per_cycle);
  }
}
