#include <catch2/catch.hpp>

#include <filesystem>

#include "haq/hw/simulate.h"
#include "hw_test_util.h"
#include "test_paths.h"

using namespace haq;
using namespace haq::hw;
using haq::test::bit_fusion_profile;
using haq::test::bit_serial_profile;
using haq::test::conv_layer;
using haq::test::fc_layer;

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The shipped profiles plus the two test profiles.
std::vector<HardwareProfile> all_profiles() {
  std::vector<HardwareProfile> out{bit_serial_profile(), bit_fusion_profile()};
  for (const char* name : {"bismo-edge", "bismo-cloud", "bitfusion"})
    out.push_back(load_profile(haq::test::source_path(std::string("hardware-profiles/") + name + ".json")));
  return out;
}

}  // namespace

TEST_CASE("bit-serial: closed-form cycles and traffic of a hand-worked conv") {
  HardwareProfile p = bit_serial_profile();
  p.memory.weight_buffer_bits = p.memory.input_buffer_bits = p.memory.output_buffer_bits = 1 << 24;
  // 3x3 conv, 64 -> 64 channels, 16x16 input, stride 1, pad 1: out 16x16.
  // GEMM: M = 16*16 = 256, K = 64*3*3 = 576, N = 64.
  model::Layer l = conv_layer("c", 64, 64, 3, 1, 16);
  LoweredLayer L = lower_layer(l, 1);
  CHECK(L.m == 256);
  CHECK(L.k == 576);
  CHECK(L.n == 64);
  // w4a4: ceil(256/8) * ceil(576/256) * ceil(64/8) * 4 * 4 = 32 * 3 * 8 * 16 = 12288.
  CHECK(compute_cycles(l, 4, 4, p) == 12288);

  // Tiling 64 x 576 x 64 (all of K and N), inputs outer: each input and weight read once.
  LayerCost c = simulate_tiling(l, 4, 4, p, 64, 576, 64, LoopOrder::inputs_outer);
  REQUIRE(c.fits);
  // DRAM read: inputs 64*16*16 elements * 4 bits = 65536, weights 576*64*4 = 147456 -> 212992.
  CHECK(c.dram_read_bits == 212992);
  // DRAM write: 256*64 outputs * 8 bits = 131072. Transfer (212992+131072)/64 = 5376 cycles.
  CHECK(c.dram_write_bits == 131072);
  // Fill: input tile 64*576/9 unique elements * 4 = 16384 bits + weights 147456 -> 2560 cycles.
  // Drain: 64*64*8/64 = 512 cycles. Overlapped transfer 5376-2560-512 = 2304 < 12288: compute-bound.
  CHECK(c.cycles == 2560 + 12288 + 512);
  CHECK(c.stall_cycles == 3072);
  CHECK(c.bound == Bound::compute);
  CHECK(c.latency_s == Approx(15360 / 200e6));
  // SRAM: weights 147456 fill + 12288 cycles * 256*8 bits; inputs 65536 + 12288 * 8*256;
  // outputs 256*64 * (2*32 partial-sum read+write, one K tile, + 8 write-back) = 1179648.
  CHECK(c.sram_bits == (147456 + 12288 * 2048) + (65536 + 12288 * 2048) + 1179648);
  // Compute energy is charged for useful work only: MACs*w*a = 256*64*576*16 = 150994944 binary
  // MACs over 8*256*8 = 16384 per cycle = 9216 full cycles (75% of the 12288: K = 576 uses
  // 2.25 of 3 passes of Dk = 256) at 10 pJ.
  CHECK(c.energy_compute_pj == Approx(9216 * 10.0));
  CHECK(c.energy_sram_pj == Approx(51724288 * 0.1));
  CHECK(c.energy_dram_pj == Approx(344064 * 20.0));
  CHECK(c.energy_pj == Approx(9216 * 10.0 + 51724288 * 0.1 + 344064 * 20.0));

  // Tiling 64 x 576 x 8, weights outer: weights once, inputs once per N tile (8 tiles).
  LayerCost d = simulate_tiling(l, 4, 4, p, 64, 576, 8, LoopOrder::weights_outer);
  CHECK(d.mapping.input_fetches == 8);
  CHECK(d.mapping.weight_fetches == 1);
  CHECK(d.dram_read_bits == 8 * 65536 + 147456);
  // Fill (16384 + 576*8*4) / 64 = 544, drain 64*8*8/64 = 64; transfer 802816/64 = 12544.
  CHECK(d.cycles == 544 + 12288 + 64);

  // Both tilings are compute-bound (steady state = 12288 compute cycles), so the mapper,
  // which ranks steady-state time first and energy second, costs no more energy than either;
  // its tiles fit double-buffered.
  LayerCost best = simulate_layer(l, 4, 4, p);
  CHECK(best.energy_pj <= c.energy_pj);
  CHECK(best.energy_pj <= d.energy_pj);
  CHECK(best.cycles >= 12288);
  CHECK(best.compute_cycles == 12288);
  const Mapping& m = best.mapping;
  CHECK(2 * m.tile_k * m.tile_n * 4 <= p.memory.weight_buffer_bits);
  CHECK(2 * m.tile_m * m.tile_n * 32 <= p.memory.output_buffer_bits);
}

TEST_CASE("bit-fusion: closed-form cycles and traffic of a hand-worked conv") {
  HardwareProfile p = bit_fusion_profile();  // 16x32, 192 bits/cycle, halves 256k/128k/64k bits
  // 3x3 conv, 64 -> 64, 8x8 input, stride 1, fed by another layer (no im2col). w4a4:
  // factor 4, a reduction step is 16 * 4 = 64 input channels.
  model::Layer l = conv_layer("c", 64, 64, 3, 1, 8);
  const LayerIo from_layer{true, false};
  CHECK(fusion_factor(4, 4) == 4);
  CHECK(compute_cycles(l, 4, 4, p) == 2 * 64 * 9);  // ceil(64/32) * OH*OW * 3*3 * ceil(64/64)
  // All 64 output channels: the tile of 32-bit sums, 8*8*64*32 bits, overflows half the output buffer.
  FusionTiling whole{1, 8, 8, 64, 64, "B/OW/OH/IC/OC"};
  LayerCost over = simulate_fusion_tiling(l, 4, 4, p, whole, from_layer);
  CHECK_FALSE(over.fits);
  CHECK(over.reason == "tile b1 oh8 ow8 ic64 oc64 needs 131072 output buffer bits, half the buffer is 65536");
  // 32 output channels a tile, two tiles:
  //   weights 9*64*32*4 = 73728 a tile; inputs 10*10 (halo) *64*4 = 25600; sums 8*8*32*32 = 65536.
  //   compute 2 * (1 * 64 * 9 * 1) = 1152.
  //   OC loop: inputs stay (not indexed by OC); weights grow to 147456, still resident;
  //   sums to 131072 > 65536: not resident. DRAM reads 25600 + 147456 + 131072 = 304128,
  //   writes (the sums) 131072.
  //   First fill 25600 + 147456 + 65536 = 238592 -> 1243 cycles, last drain 65536 -> 342;
  //   the rest, 131072 bits, overlaps compute (683 < 1152). Cycles 1152 + 1243 + 342 = 2737.
  FusionTiling halves{1, 8, 8, 64, 32, "B/OW/OH/IC/OC"};
  LayerCost c = simulate_fusion_tiling(l, 4, 4, p, halves, from_layer);
  REQUIRE(c.fits);
  CHECK(c.compute_cycles == 1152);
  CHECK(c.dram_read_bits == 304128);
  CHECK(c.dram_write_bits == 131072);
  CHECK(c.stall_cycles == 1243 + 342);
  CHECK(c.cycles == 2737);
  CHECK(c.bound == Bound::compute);
  CHECK(c.mapping.tile_m == 64);
  CHECK(c.mapping.tile_k == 576);
  CHECK(c.mapping.tile_n == 32);
  CHECK(c.mapping.loops == "B/OW/OH/IC/OC");
  CHECK_FALSE(c.mapping.im2col);
  // Energy: output-stationary inner loop (moves the fewest bits): the array reads
  // 2 tiles * 2048 outputs * 576 inputs and weights at 4 bits = 9437184 bits of each,
  // and reads and writes each sum once, 131072 bits.
  const double w_sram = 147456 + 9437184, in_sram = 25600 + 9437184, out_sram = 2 * (131072 + 131072);
  CHECK(c.sram_bits == int64_t(w_sram + in_sram + out_sram));
  CHECK(c.energy_compute_pj == Approx(1152 * 235.0));
  CHECK(c.energy_sram_pj == Approx(w_sram * 0.02 + in_sram * 0.05 + out_sram * 0.11));
  CHECK(c.energy_dram_pj == Approx((304128 + 131072) * 15.0));

  // 32 input channels a tile too: the reduction step (64) pads 9*32 = 288 to 320 weights.
  // With IC outside OC, the sums leave the chip and come back once per input-channel
  // tile: 2 * 131072 read and written; with IC inside OC they stay: same cycles (both
  // compute-bound behind the same fill), half the traffic.
  FusionTiling ic_outer{1, 8, 8, 32, 32, "IC/B/OW/OH/OC"}, ic_inner{1, 8, 8, 32, 32, "OC/B/OW/OH/IC"};
  LayerCost rt = simulate_fusion_tiling(l, 4, 4, p, ic_outer, from_layer);
  LayerCost st = simulate_fusion_tiling(l, 4, 4, p, ic_inner, from_layer);
  REQUIRE(rt.fits);
  REQUIRE(st.fits);
  CHECK(rt.compute_cycles == 2304);
  CHECK(rt.dram_read_bits == 25600 + 5 * 64 * 32 * 4 * 4 + 262144);
  CHECK(rt.dram_write_bits == 262144);
  CHECK(rt.cycles == 2304 + 1328 + 342);
  CHECK(st.dram_read_bits == 25600 + 5 * 64 * 32 * 4 * 4 + 131072);
  CHECK(st.dram_write_bits == 131072);
  CHECK(st.cycles == rt.cycles);
  CHECK(rt.mapping.loops == "IC/B/OW/OH/OC");
  CHECK_THROWS_WITH(simulate_fusion_tiling(l, 4, 4, p, FusionTiling{1, 8, 8, 32, 32, "IC/B/OW/OH"}),
                    Catch::Contains("bad loop order 'IC/B/OW/OH'"));

  // The mapper: never worse than any tiling above, and no fewer cycles than the compute.
  LayerCost best = simulate_layer(l, 4, 4, p, from_layer);
  CHECK(best.cycles <= 2737);
  CHECK(best.compute_cycles >= 1152);
  CHECK(best.cycles == best.compute_cycles + best.stall_cycles);
}

TEST_CASE("bit-fusion: a first layer is lowered as im2col, one reduction over kernel x channels") {
  HardwareProfile p = bit_fusion_profile();
  // 3x3 stride 2, 3 -> 32 channels, 224x224 input: K*K*IC = 27 is one reduction (two
  // steps of 16), where a layer fed by a layer reduces each of the 9 taps alone
  // (ceil(3/16) = 1 step each): 4.5x the cycles.
  model::Layer first = conv_layer("first", 3, 32, 3, 2, 224);
  LayerCost host = simulate_layer(first, 8, 8, p, LayerIo{false, true});
  LayerCost inner = simulate_layer(first, 8, 8, p, LayerIo{true, true});
  CHECK(host.mapping.im2col);
  CHECK_FALSE(inner.mapping.im2col);
  CHECK(host.compute_cycles == 112 * 112 * 2);
  CHECK(inner.compute_cycles == 112 * 112 * 9);
  CHECK(compute_cycles(first, 8, 8, p) == 112 * 112 * 9);
}

TEST_CASE("bit-fusion: throughput follows the fusion factor 8/8 -> 1x, 4/4 -> 4x, 2/2 -> 16x") {
  HardwareProfile p = bit_fusion_profile();
  model::Layer l = conv_layer("c", 256, 64, 3, 1, 14);  // 256 input channels = 16 rows * 16
  int64_t c8 = compute_cycles(l, 8, 8, p);
  CHECK(c8 == 1 * 2 * 14 * 14 * 9 * 16);
  CHECK(c8 == 4 * compute_cycles(l, 4, 4, p));
  CHECK(c8 == 16 * compute_cycles(l, 2, 2, p));
  CHECK(c8 == compute_cycles(l, 5, 7, p));  // 5..8 bits all use the 8-bit mode
  CHECK(c8 == 2 * compute_cycles(l, 8, 4, p));
  CHECK(compute_cycles(l, 1, 1, p) == compute_cycles(l, 2, 2, p));  // 1-bit runs as 2-bit
  // Depthwise: one input channel per group, so the fusion factor buys nothing.
  model::Layer dw = conv_layer("dw", 96, 96, 3, 1, 14, 96);
  CHECK(compute_cycles(dw, 8, 8, p) == 96 * 14 * 14 * 9);
  CHECK(compute_cycles(dw, 2, 2, p) == compute_cycles(dw, 8, 8, p));
}

TEST_CASE("bit-serial: compute cycles scale exactly with w*a on a compute-bound layer") {
  HardwareProfile p = bit_serial_profile();
  model::Layer l = conv_layer("c", 256, 256, 3, 1, 14);
  int64_t base = compute_cycles(l, 1, 1, p);
  CHECK(base == ceil_div(196, 8) * ceil_div(2304, 256) * ceil_div(256, 8));
  for (int w = 1; w <= 8; ++w)
    for (int a = 1; a <= 8; ++a) CHECK(compute_cycles(l, w, a, p) == base * w * a);
  LayerCost c88 = simulate_layer(l, 8, 8, p), c44 = simulate_layer(l, 4, 4, p);
  CHECK(c88.bound == Bound::compute);
  CHECK(c44.bound == Bound::compute);
  CHECK(double(c44.cycles) / double(c88.cycles) == Approx(0.25).margin(0.01));
  // Depthwise: K = 9 on a Dk = 256 array -- one reduction step per 9 useful MACs.
  model::Layer dw = conv_layer("dw", 96, 96, 3, 1, 14, 96);
  CHECK(compute_cycles(dw, 8, 8, p) == 96 * ceil_div(196, 8) * 1 * 1 * 64);
  // The mapper runs 8 channels at once as a block-diagonal GEMM 196 x 72 x 8: it fills the
  // Dn = 8 columns (K = 72 still uses 72 of Dk = 256): 96/8 * 25 * 1 * 1 * 64 = 19200 cycles.
  CHECK(compute_cycles(dw, 8, 8, p, 8) == 19200);
  LayerCost c = simulate_layer(dw, 8, 8, p);
  CHECK(c.mapping.group_block == 8);
  CHECK(c.compute_cycles == 19200);
  // Only the diagonal blocks' weights cross DRAM: 96*9*8 bits, plus inputs 96*14*14*8 once.
  CHECK(c.dram_read_bits == 96 * 9 * 8 + 96 * 196 * 8);
}

TEST_CASE("a large FC layer at batch 1 is memory-bound, its latency stops falling with bits") {
  HardwareProfile p = bit_serial_profile();
  model::Layer fc = fc_layer("fc", 4096, 4096);
  // Weights 4096*4096*w bits over 64 bits/cycle = 262144*w cycles >> compute 8192*w*a.
  for (int w = 1; w <= 8; ++w) {
    LayerCost at8 = simulate_layer(fc, w, 8, p);
    CHECK(at8.bound == Bound::memory);
    CHECK(at8.dram_read_bits >= 4096 * 4096 * w);
    for (int a = 1; a < 8; ++a) {
      // Fewer activation bits barely cut traffic (weights dominate): latency flat.
      LayerCost c = simulate_layer(fc, w, a, p);
      CHECK(c.bound == Bound::memory);
      CHECK(double(c.cycles) / double(at8.cycles) == Approx(1.0).epsilon(0.01));
    }
  }
  // Weight bits do cut traffic: latency scales with w.
  CHECK(double(simulate_layer(fc, 4, 8, p).cycles) / double(simulate_layer(fc, 8, 8, p).cycles) ==
        Approx(0.5).epsilon(0.01));

  // With 1024 bits/cycle the same layer is compute-bound at w8a8 (compute 8192*8*8 = 524288 vs
  // transfer about 131072), latency falls with a down to a = 2, where transfer takes over:
  // at a = 1 it no longer falls.
  p.memory.dram_bits_per_cycle = 1024;
  LayerCost a8 = simulate_layer(fc, 8, 8, p), a4 = simulate_layer(fc, 8, 4, p);
  LayerCost a2 = simulate_layer(fc, 8, 2, p), a1 = simulate_layer(fc, 8, 1, p);
  CHECK(a8.bound == Bound::compute);
  CHECK(double(a4.cycles) / double(a8.cycles) == Approx(0.5).epsilon(0.01));
  CHECK(a1.bound == Bound::memory);
  CHECK(double(a1.cycles) >= 0.95 * double(a2.cycles));
}

TEST_CASE("latency is never below the peak-throughput or the minimal-traffic bound") {
  for (const HardwareProfile& p : all_profiles()) {
    for (const model::Layer& l : haq::test::test_layers()) {
      LoweredLayer L = lower_layer(l, p.batch);
      for (int w = p.w_bits.min_bits; w <= p.w_bits.max_bits; ++w) {
        for (int a = p.a_bits.min_bits; a <= p.a_bits.max_bits; ++a) {
          INFO(p.name << " " << l.name << " w" << w << "a" << a);
          LayerCost c = simulate_layer(l, w, a, p);
          REQUIRE(c.fits);
          double macs = double(l.macs) * double(p.batch);
          CHECK(c.macs == l.macs * p.batch);
          if (p.architecture == Architecture::bit_serial) {
            const auto& s = p.bit_serial;  // peak: Dm*Dk*Dn binary MACs per cycle
            CHECK(double(c.cycles) * s.dm * s.dk * s.dn >= macs * w * a);
          } else {
            const auto& f = p.bit_fusion;  // peak: rows*cols*factor MACs per cycle
            CHECK(double(c.cycles) * f.rows * f.cols * fusion_factor(w, a) >= macs);
          }
          // Every weight, unique input and output crosses the DRAM interface at least once.
          double min_bits = double(L.groups) * (double(L.k * L.n) * w +
                                                double(std::min(L.input_elems, L.m * L.k)) * a +
                                                double(L.m * L.n) * p.memory.output_bits);
          CHECK(double(c.cycles) * p.memory.dram_bits_per_cycle >= min_bits);
          CHECK(c.cycles == c.compute_cycles + c.stall_cycles);
          CHECK(c.energy_pj == Approx(c.energy_compute_pj + c.energy_sram_pj + c.energy_dram_pj));
        }
      }
    }
  }
}

// bit-serial: energy never rises when bits fall. bit-fusion's mapper, as
// BitFusion's own, takes the fewest cycles first, so its energy may rise
// (a faster tiling that moves more data); and its cycles may rise slightly:
// smaller data stays resident over more loops, so the first fill, which
// does not overlap compute, is larger, and a faster fusion mode pads the
// reduction to more lanes (measured here: at most 2.4%, fc w4a3 -> w3a3).
// The closed-form compute never rises.
TEST_CASE("energy (bit-serial) and cycles (bit-fusion) do not rise when bits fall") {
  for (const HardwareProfile& p : all_profiles()) {
    for (const model::Layer& l : haq::test::test_layers()) {
      for (int w = p.w_bits.min_bits; w <= p.w_bits.max_bits; ++w) {
        for (int a = p.a_bits.min_bits; a <= p.a_bits.max_bits; ++a) {
          INFO(p.name << " " << l.name << " w" << w << "a" << a);
          if (p.architecture == Architecture::bit_serial) {
            double e = simulate_layer(l, w, a, p).energy_pj;
            if (w > p.w_bits.min_bits) CHECK(simulate_layer(l, w - 1, a, p).energy_pj <= e * (1 + 1e-12));
            if (a > p.a_bits.min_bits) CHECK(simulate_layer(l, w, a - 1, p).energy_pj <= e * (1 + 1e-12));
            continue;
          }
          const int64_t compute = compute_cycles(l, w, a, p), cycles = simulate_layer(l, w, a, p).cycles;
          for (auto [wb, ab] : {std::pair{w - 1, a}, std::pair{w, a - 1}}) {
            if (wb < p.w_bits.min_bits || ab < p.a_bits.min_bits) continue;
            CHECK(compute_cycles(l, wb, ab, p) <= compute);
            CHECK(double(simulate_layer(l, wb, ab, p).cycles) <= 1.05 * double(cycles));
          }
        }
      }
    }
  }
}

TEST_CASE("a layer whose smallest tile does not fit is a result of simulate_layer, an error of the cost table") {
  HardwareProfile p = bit_serial_profile();
  p.memory.weight_buffer_bits = 1000;  // two 256x8 1-bit weight tiles need 4096
  LayerCost c = simulate_layer(conv_layer("c", 64, 64, 3, 1, 8), 1, 1, p);
  CHECK_FALSE(c.fits);
  CHECK(c.reason == "tile 8x256x8 (M x K x N) needs 4096 weight buffer bits (two tiles), the profile has 1000");
  // A cost table of it is an error naming the layer (a model the profile cannot run has
  // no latency; a 0 in the totals would let any budget be met).
  CHECK_THROWS_WITH(build_cost_table(haq::test::graph_of({conv_layer("c", 64, 64, 3, 1, 8)}), p),
                    "test-bit-serial.json: layer 'c': does not fit profile 'test-bit-serial' at w1a1: tile 8x256x8 "
                    "(M x K x N) needs 4096 weight buffer bits (two tiles), the profile has 1000");
}

TEST_CASE("cost table, evaluate, size and BOPs") {
  HardwareProfile p = bit_serial_profile();
  p.w_bits = {2, 8};
  model::Graph g = haq::test::graph_of(
      {conv_layer("c1", 3, 16, 3, 1, 32), conv_layer("c2", 16, 32, 3, 2, 32), fc_layer("fc", 8192, 10)});
  CostTable t = build_cost_table(g, p);
  CHECK(t.num_layers() == 3);
  CHECK(t.costs.size() == 3 * 7 * 8);
  CHECK(t.at(1, 4, 3).cycles == simulate_layer(g.layers[1], 4, 3, p).cycles);
  CHECK_THROWS_AS(t.at(0, 1, 8), Error);  // w_bits 1 is outside 2..8

  quant::Policy pol = quant::uniform_policy(g, 4, 6);
  pol.layers[0].fp32 = true;  // costed at the profile's highest bits (8/8)
  CostReport r = evaluate(t, pol);
  CHECK(r.layers.size() == 3);
  CHECK(r.layers[0].w_bits == 8);
  CHECK(r.layers[0].a_bits == 8);
  CHECK(r.cycles == t.at(0, 8, 8).cycles + t.at(1, 4, 6).cycles + t.at(2, 4, 6).cycles);
  CHECK(r.energy_pj == Approx(t.at(0, 8, 8).energy_pj + t.at(1, 4, 6).energy_pj + t.at(2, 4, 6).energy_pj));
  CHECK(r.latency_s == Approx(double(r.cycles) / 200e6));
  // Size: fp32 weights count 32 bits. c1 has 16*3*9 = 432 weights, c2 16*32*9 = 4608, fc 81920.
  CHECK(r.size_bits == 432 * 32 + 4608 * 4 + 81920 * 4);
  CHECK(r.size_bits == model_size_bits(g, pol));
  double macs0 = 32 * 32 * 432, macs1 = 16 * 16 * 4608, macs2 = 81920;
  CHECK(r.bops == Approx(macs0 * 32 * 32 + macs1 * 24 + macs2 * 24));
  CHECK(r.bops == Approx(policy_bops(g, pol)));

  CostReport hi = evaluate_max_bits(t), lo = evaluate_min_bits(t);
  CHECK(hi.layers[2].w_bits == 8);
  CHECK(lo.layers[2].w_bits == 2);
  CHECK(lo.layers[2].a_bits == 1);
  CHECK(lo.latency_s < hi.latency_s);
  CHECK(lo.energy_pj < hi.energy_pj);
  nlohmann::json j = to_json(r);
  CHECK(j["layers"].size() == 3);
  CHECK(j["layers"][1]["mapping"]["gemm_k"] == 16 * 9);
}

TEST_CASE("table profile: costs are the CSV rows, a missing row names the layer") {
  HardwareProfile p;
  p.file = "t.json";
  p.name = "t";
  p.architecture = Architecture::table;
  p.clock_mhz = 100;
  p.w_bits = {8, 8};
  p.a_bits = {8, 8};
  p.table.csv = "t.csv";
  p.table.has_energy = true;
  p.table.entries[{"fc", 8, 8}] = {1.5e-5, 2.5e6};
  LayerCost c = simulate_layer(fc_layer("fc", 16, 16), 8, 8, p);
  CHECK(c.latency_s == 1.5e-5);
  CHECK(c.cycles == 1500);  // 1.5e-5 s at 100 MHz
  CHECK(c.energy_pj == 2.5e6);
  CHECK(c.bound == Bound::measured);
  try {
    simulate_layer(fc_layer("fc2", 16, 16), 8, 8, p);
    FAIL("no throw");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) ==
          "t.csv: layer 'fc2': no row for w_bits=8 a_bits=8 (the table needs every layer of the "
          "model at every (w_bits, a_bits) in the profile's /precision)");
  }
}
