#include "bit_serial.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

namespace haq::hw::bismo {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }


// The padded GEMM BISMO runs: rows to whole Dm (Dn) blocks, the reduction to whole Dk-bit words.
struct Padded {
  int64_t m, k, n;
};

Padded padded(const LoweredLayer& L, const BitSerialSpec& s) {
  return {round_up(L.m, s.dm), round_up(L.k, s.dk), round_up(L.n, s.dn)};
}

}  // namespace

std::vector<int64_t> tile_candidates(int64_t dim, int64_t granule) {
  std::vector<int64_t> out;
  for (int64_t t = granule; t < dim; t *= 2) out.push_back(t);
  out.push_back(dim);
  return out;
}

std::string overflow(const LoweredLayer& L, const Tiling& t, int w_bits, int a_bits, const HardwareProfile& p) {
  const BitSerialSpec& s = p.bit_serial;
  const MemorySpec& mem = p.memory;
  const Padded P = padded(L, s);
  const int64_t tm = std::min(t.tm, P.m), tk = std::min(t.tk, P.k), tn = std::min(t.tn, P.n);
  const std::string chunk = fmt::format("chunk {}x{}x{} (M x K x N, padded)", tm, tk, tn);
  if (2 * tn * tk * w_bits > mem.weight_buffer_bits)
    return fmt::format("{} needs {} weight (RHS) buffer bits (two chunks), the profile has {}", chunk,
                       2 * tn * tk * w_bits, mem.weight_buffer_bits);
  if (2 * tm * tk * a_bits > mem.input_buffer_bits)
    return fmt::format("{} needs {} input (LHS) buffer bits (two chunks), the profile has {}", chunk,
                       2 * tm * tk * a_bits, mem.input_buffer_bits);
  if (2 * s.dm * s.dn * mem.accumulator_bits > mem.output_buffer_bits)
    return fmt::format("two {}x{} result tiles of {}-bit accumulators need {} result buffer bits, the profile has {}",
                       s.dm, s.dn, mem.accumulator_bits, 2 * s.dm * s.dn * mem.accumulator_bits,
                       mem.output_buffer_bits);
  return "";
}

LayerCost cost(const LoweredLayer& L, const Tiling& t, int w_bits, int a_bits, const HardwareProfile& p,
               double binary_macs) {
  const BitSerialSpec& s = p.bit_serial;
  const BitSerialStages& g = s.stages;
  const MemorySpec& mem = p.memory;
  const EnergySpec& en = p.energy;
  const Padded P = padded(L, s);
  const int64_t tm = std::min(t.tm, P.m), tk = std::min(t.tk, P.k), tn = std::min(t.tn, P.n);
  const int64_t nm = ceil_div(P.m, tm), nk = ceil_div(P.k, tk), nn = ceil_div(P.n, tn);
  const int64_t w = w_bits, a = a_bits;
  // How often each operand crosses the read channel: a chunk spanning all of
  // K stays while the other operand's chunks stream past it.
  int64_t in_fetch, w_fetch;
  if (t.order == LoopOrder::inputs_outer) {
    in_fetch = nk == 1 ? 1 : nn;
    w_fetch = (nk == 1 && nn == 1) ? 1 : nm;
  } else {
    w_fetch = nk == 1 ? 1 : nm;
    in_fetch = (nk == 1 && nm == 1) ? 1 : nn;
  }
  const int64_t G = L.groups;
  const int64_t lhs_bits = P.m * P.k * a, rhs_bits = P.n * P.k * w;  // packed bit-planes, padding included
  const int64_t rd = G * (lhs_bits * in_fetch + rhs_bits * w_fetch);
  // Result tiles: each K chunk's partial results leave as accumulators (the
  // host sums them when K does not fit on chip).
  const int64_t tiles = G * (P.m / s.dm) * (P.n / s.dn) * nk;
  const int64_t tile_bits = s.dm * s.dn * g.result_bits;
  const int64_t wr = tiles * tile_bits;

  // Execute: w*a instructions of K/Dk cycles per tile, pipelined; per tile one
  // drain and four token syncs (wait for operands, acquire a result buffer,
  // release it, release the operands).
  const int64_t compute = G * (P.m / s.dm) * (P.n / s.dn) * (P.k / s.dk) * w * a;
  const int64_t exec = compute + tiles * (g.exec_latency_cycles + 4 * g.sync_cycles);
  // Result: per tile, the accumulators over the write channel, the stage's
  // run state machine and two syncs (one sync's worth each).
  const int64_t tile_write = ceil_div(tile_bits, g.result_bits_per_cycle);
  const int64_t result = tiles * (tile_write + 3 * g.sync_cycles);
  // Fetch: the bits over the read channel; per chunk run, the DRAM latency
  // before its buffer is signalled full and two syncs.
  const int64_t fetch_runs = G * nk * (in_fetch * nm + w_fetch * nn);
  const int64_t run_overhead = g.fetch_latency_cycles + 2 * g.sync_cycles;
  const int64_t fetch = ceil_div(rd, g.fetch_bits_per_cycle) + fetch_runs * run_overhead;
  // Both channels share the DRAM.
  const int64_t dram = ceil_div(rd + wr, mem.dram_bits_per_cycle);
  // What cannot overlap: the first chunks' fetch before any execute, the last
  // tile's execute after the last fetch, its write-back after everything.
  const int64_t fill = ceil_div(tm * tk * a + tn * tk * w, g.fetch_bits_per_cycle) + run_overhead;
  const int64_t last_exec = (tk / s.dk) * w * a + g.exec_latency_cycles;
  const int64_t cycles =
      std::max({fetch + last_exec + tile_write, fill + exec + tile_write, fill + last_exec + result, dram});

  LayerCost out;
  out.fits = true;
  out.cycles = cycles;
  out.compute_cycles = compute;
  out.stall_cycles = cycles - compute;
  out.bound = std::max({fetch, result, dram}) > exec ? Bound::memory : Bound::compute;
  out.dram_read_bits = rd;
  out.dram_write_bits = wr;
  // On chip: buffer fills, one Dk-bit word per DPU row and column per busy
  // cycle, each accumulator written to and read from the result memory once per tile.
  const int64_t w_sram = G * rhs_bits * w_fetch + compute * s.dn * s.dk;
  const int64_t in_sram = G * lhs_bits * in_fetch + compute * s.dm * s.dk;
  const int64_t out_sram = 2 * tiles * s.dm * s.dn * mem.accumulator_bits;
  out.sram_bits = w_sram + in_sram + out_sram;
  const double peak = double(s.dm) * double(s.dk) * double(s.dn);
  const double utilisation = compute > 0 ? std::min(1.0, binary_macs / (double(compute) * peak)) : 1.0;
  out.energy_compute_pj = double(compute) * en.core_pj_per_cycle * utilisation;
  out.energy_sram_pj = double(w_sram) * en.sram_weight_pj_per_bit + double(in_sram) * en.sram_input_pj_per_bit +
                       double(out_sram) * en.sram_output_pj_per_bit;
  out.energy_dram_pj = double(rd + wr) * en.dram_pj_per_bit;
  out.energy_pj = out.energy_compute_pj + out.energy_sram_pj + out.energy_dram_pj;
  out.mapping = Mapping{L.m, L.k, L.n, L.groups, L.group_block, tm, tk, tn, t.order, w_fetch, in_fetch, {}, false};
  out.mapping.tiles = tiles;
  return out;
}

namespace {

// The mapper's choice for the layer run `block` groups at a time: the least
// energy (all tilings do the same work, so: the least re-fetch traffic), then
// the fewest cycles.
LayerCost search(const model::Layer& layer, int w_bits, int a_bits, const HardwareProfile& p, int64_t block) {
  const BitSerialSpec& s = p.bit_serial;
  const double binary_macs = double(layer.macs) * double(p.batch) * w_bits * a_bits;
  const LoweredLayer L = lower_layer(layer, p.batch, block);
  const Padded P = padded(L, s);
  LayerCost best;
  best.fits = false;
  std::string first_overflow;
  for (int64_t tk : tile_candidates(P.k, s.dk))
    for (int64_t tn : tile_candidates(P.n, s.dn))
      for (int64_t tm : tile_candidates(P.m, s.dm))
        for (LoopOrder order : {LoopOrder::weights_outer, LoopOrder::inputs_outer}) {
          const Tiling t{tm, tk, tn, order};
          std::string why = overflow(L, t, w_bits, a_bits, p);
          if (!why.empty()) {
            if (first_overflow.empty()) first_overflow = why;
            continue;
          }
          LayerCost c = cost(L, t, w_bits, a_bits, p, binary_macs);
          if (!best.fits || c.energy_pj < best.energy_pj || (c.energy_pj == best.energy_pj && c.cycles < best.cycles))
            best = std::move(c);
        }
  if (!best.fits) {
    best = LayerCost{};
    best.fits = false;
    best.reason = first_overflow;
    best.compute_cycles = compute_cycles(layer, w_bits, a_bits, p, block);
  }
  return best;
}

}  // namespace

LayerCost best(const model::Layer& layer, int w_bits, int a_bits, const HardwareProfile& p) {
  const int64_t groups = lower_layer(layer, p.batch).groups;
  if (groups == 1) return search(layer, w_bits, a_bits, p, 1);
  // How many groups run as one GEMM is how the host lays the layer out, once
  // for every bitwidth: the block with the fewest cycles at the profile's
  // highest bits. (Chosen per bitwidth, the block would jump between bits,
  // and energy with it.)
  int64_t block = 1;
  LayerCost chosen;
  chosen.fits = false;
  for (int64_t b = 1;; b *= 2) {
    LayerCost c = search(layer, p.w_bits.max_bits, p.a_bits.max_bits, p, std::min(b, groups));
    if (c.fits && (!chosen.fits || c.cycles < chosen.cycles ||
                   (c.cycles == chosen.cycles && c.energy_pj < chosen.energy_pj))) {
      chosen = std::move(c);
      block = std::min(b, groups);
    }
    if (b >= groups) break;
  }
  return search(layer, w_bits, a_bits, p, block);
}

}  // namespace haq::hw::bismo
