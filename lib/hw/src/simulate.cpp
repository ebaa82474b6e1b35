#include "haq/hw/simulate.h"

#include <algorithm>
#include <map>
#include <set>
#include <cmath>
#include <limits>

#include "haq/core/error.h"
#include "bit_fusion.h"
#include "bit_serial.h"

namespace haq::hw {

const char* to_string(Bound b) {
  switch (b) {
    case Bound::compute: return "compute";
    case Bound::memory: return "memory";
    case Bound::measured: return "measured";
  }
  return "?";
}

const char* to_string(LoopOrder o) {
  return o == LoopOrder::inputs_outer ? "inputs-outer" : "weights-outer";
}

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void check_bits(int w_bits, int a_bits, const HardwareProfile& p) {
  if (!p.w_bits.contains(w_bits) || !p.a_bits.contains(a_bits))
    fail(ErrorKind::usage, p.file, "/precision",
         "w{}a{} is outside what profile '{}' supports (w_bits {}..{}, a_bits {}..{})", w_bits, a_bits,
         p.name, p.w_bits.min_bits, p.w_bits.max_bits, p.a_bits.min_bits, p.a_bits.max_bits);
}

// Per-architecture facts the generic mapper needs.
struct ArrayModel {
  int64_t granule_m = 1, granule_k = 1, granule_n = 1;  // tile sizes are multiples of these
  int64_t weight_read_bits_per_cycle = 0;  // operand bits the array reads per busy cycle
  int64_t input_read_bits_per_cycle = 0;
  // Weight reads happen only in busy lanes (BitFusion: per-unit weight
  // registers) rather than as whole buffer words (BISMO: BRAM words).
  bool weight_reads_gated = false;
  double peak_ops_per_cycle = 1;  // useful ops per cycle at full utilisation
};

ArrayModel array_model(const LoweredLayer& L, int w_bits, int a_bits, const HardwareProfile& p) {
  ArrayModel a;
  if (p.architecture == Architecture::bit_serial) {
    const auto& s = p.bit_serial;
    a.granule_m = s.dm;
    a.granule_k = s.dk;
    a.granule_n = s.dn;
    // One bit-plane of a Dm x Dk input block and of a Dk x Dn weight block per cycle.
    a.input_read_bits_per_cycle = s.dm * s.dk;
    a.weight_read_bits_per_cycle = s.dk * s.dn;
    a.peak_ops_per_cycle = double(s.dm) * double(s.dk) * double(s.dn);  // binary MACs
  } else {
    const auto& f = p.bit_fusion;
    a.granule_m = 1;
    // A reduction step covers rows*factor input channels at every kernel position.
    a.granule_k = L.kernel_area * f.rows * fusion_factor(w_bits, a_bits);
    a.granule_n = f.cols;
    // Each fusion unit reads one 8-bit word of packed weights per cycle; each
    // row one 8-bit word of packed inputs, broadcast along the row.
    a.weight_read_bits_per_cycle = f.rows * f.cols * 8;
    a.input_read_bits_per_cycle = f.rows * 8;
    a.weight_reads_gated = true;
    a.peak_ops_per_cycle = double(f.rows) * double(f.cols) * double(fusion_factor(w_bits, a_bits));  // MACs
  }
  return a;
}

}  // namespace

int64_t fusion_factor(int w_bits, int a_bits) {
  return (8 / std::max(a_bits, 2)) * (8 / std::max(w_bits, 2));
}

LoweredLayer lower_layer(const model::Layer& layer, int64_t batch, int64_t group_block) {
  LoweredLayer L;
  if (layer.kind == model::LayerKind::conv) {
    L.groups = L.layer_groups = std::max<int64_t>(1, layer.groups);
    L.ic_per_group = layer.c_in / L.groups;
    L.kernel_area = layer.kernel_h * layer.kernel_w;
    L.m = batch * layer.out_h * layer.out_w;
    L.k = L.ic_per_group * L.kernel_area;
    L.n = layer.c_out / L.groups;
    L.input_elems = batch * L.ic_per_group * layer.in_h * layer.in_w;
    if (group_block > 1 && L.groups > 1) {
      // b groups side by side as one block-diagonal GEMM (zeros off the diagonal).
      const int64_t b = std::min(group_block, L.groups);
      L.group_block = b;
      L.groups = ceil_div(L.groups, b);
      L.ic_per_group *= b;
      L.k *= b;
      L.n *= b;
      L.input_elems *= b;
    }
  } else if (layer.kind == model::LayerKind::act_matmul) {
    // Every sample's every product is a GEMM of its own: its second operand
    // (the "weights" of the array) is an activation, streamed from memory
    // for each product and never reused across the batch.
    L.groups = L.layer_groups = batch * std::max<int64_t>(1, layer.mats);
    L.ic_per_group = layer.c_in;
    L.kernel_area = 1;
    L.m = std::max<int64_t>(1, layer.rows);
    L.k = layer.c_in;
    L.n = layer.c_out;
    L.input_elems = L.m * L.k;
  } else {
    L.groups = 1;
    L.ic_per_group = layer.c_in;
    L.kernel_area = 1;
    L.m = batch * std::max<int64_t>(1, layer.rows);
    L.k = layer.c_in;
    L.n = layer.c_out;
    L.input_elems = L.m * L.k;
  }
  return L;
}

int64_t compute_cycles(const model::Layer& layer, int w_bits, int a_bits,
                       const HardwareProfile& p, int64_t group_block) {
  LoweredLayer L = lower_layer(layer, p.batch, group_block);
  if (p.architecture == Architecture::bit_serial) {
    const auto& s = p.bit_serial;
    return L.groups * ceil_div(L.m, s.dm) * ceil_div(L.k, s.dk) * ceil_div(L.n, s.dn) * w_bits *
           a_bits;
  }
  if (p.architecture == Architecture::bit_fusion) {
    const auto& f = p.bit_fusion;
    int64_t factor = fusion_factor(w_bits, a_bits);
    return L.groups * L.m * L.kernel_area * ceil_div(L.ic_per_group, f.rows * factor) *
           ceil_div(L.n, f.cols);
  }
  HAQ_ASSERT(false && "compute_cycles of a table profile");
}

namespace {

LayerCost simulate_table(const model::Layer& layer, int w_bits, int a_bits,
                         const HardwareProfile& p) {
  LayerCost c;
  auto it = p.table.entries.find(std::make_tuple(layer.name, w_bits, a_bits));
  if (it == p.table.entries.end())
    fail(ErrorKind::profile, p.table.csv, fmt::format("layer '{}'", layer.name),
         "no row for w_bits={} a_bits={} (the table needs every layer of the model at every "
         "(w_bits, a_bits) in the profile's /precision)", w_bits, a_bits);
  c.latency_s = it->second.latency_s;
  c.cycles = c.compute_cycles = std::llround(c.latency_s * p.clock_hz());
  c.energy_pj = it->second.energy_pj;
  c.bound = Bound::measured;
  return c;
}

}  // namespace

namespace {

// Everything about (layer, bits, profile) that does not depend on the tiling.
struct MapContext {
  LoweredLayer L;
  ArrayModel A;
  int w_bits = 8, a_bits = 8;
  int64_t compute = 0;
  double input_density = 1;  // unique input elements / (M*K), <= 1
  int64_t in_bits = 0, w_bits_total = 0, out_bits = 0;  // per group, one pass
  int64_t in_write_bits = 0;  // per group: the producer's write of this layer's input (LayerIo)
  double utilisation = 1;  // useful ops / (compute cycles * peak ops per cycle), <= 1
};

MapContext make_context(const model::Layer& layer, int w_bits, int a_bits, const HardwareProfile& p,
                        int64_t group_block, const LayerIo& io) {
  MapContext c;
  c.L = lower_layer(layer, p.batch, group_block);
  c.A = array_model(c.L, w_bits, a_bits, p);
  c.w_bits = w_bits;
  c.a_bits = a_bits;
  c.compute = compute_cycles(layer, w_bits, a_bits, p, group_block);
  // Packed sub-byte data, so traffic scales with the bits.
  const int64_t in_elems = std::min(c.L.input_elems, c.L.m * c.L.k);
  c.input_density = double(in_elems) / double(c.L.m * c.L.k);
  c.in_bits = in_elems * a_bits;
  // Block-diagonal weights: only the b diagonal blocks cross the DRAM
  // interface; the loader writes the zeros into the weight buffer.
  c.w_bits_total = c.L.k * c.L.n * w_bits / c.L.group_block;
  c.out_bits = io.output_to_layer ? 0 : c.L.m * c.L.n * p.memory.output_bits;
  c.in_write_bits = io.input_from_layer ? c.in_bits : 0;
  if (io.input_b_from_layer) c.in_write_bits += c.w_bits_total;
  // Bit-serial useful work is binary MACs (MACs * w * a); bit-fusion's is MACs.
  double macs = double(layer.macs) * double(p.batch);
  double useful = p.architecture == Architecture::bit_serial ? macs * w_bits * a_bits : macs;
  if (c.compute > 0) c.utilisation = std::min(1.0, useful / (double(c.compute) * c.A.peak_ops_per_cycle));
  return c;
}

int64_t input_tile_bits(const MapContext& c, int64_t tm, int64_t tk) {
  return static_cast<int64_t>(std::ceil(double(tm) * double(tk) * c.input_density)) * c.a_bits;
}

// Cost of one tiling that fits; fills every field of `out` but layer/bits/macs/latency_s.
void cost_tiling(const MapContext& c, const HardwareProfile& p, int64_t tm, int64_t tk, int64_t tn,
                 LoopOrder order, LayerCost& out) {
  const LoweredLayer& L = c.L;
  const MemorySpec& mem = p.memory;
  const EnergySpec& en = p.energy;
  const int64_t bw = mem.dram_bits_per_cycle;
  tm = std::min(tm, L.m), tk = std::min(tk, L.k), tn = std::min(tn, L.n);
  const int64_t nm = ceil_div(L.m, tm), nk = ceil_div(L.k, tk), nn = ceil_div(L.n, tn);
  int64_t in_fetch, w_fetch;
  if (order == LoopOrder::inputs_outer) {
    // An input tile spanning all of K stays resident while the weight tiles stream by.
    in_fetch = nk == 1 ? 1 : nn;
    w_fetch = (nk == 1 && nn == 1) ? 1 : nm;
  } else {
    w_fetch = nk == 1 ? 1 : nm;
    in_fetch = (nk == 1 && nm == 1) ? 1 : nn;
  }
  // Traffic of all GEMMs; a partial last block of groups moves only its real data.
  auto all_groups = [&](int64_t per_gemm_bits) {
    return per_gemm_bits / L.group_block * L.layer_groups;
  };
  const int64_t rd = all_groups(c.in_bits) * in_fetch + all_groups(c.w_bits_total) * w_fetch;
  const int64_t wr = all_groups(c.out_bits) + all_groups(c.in_write_bits);
  const int64_t transfer = ceil_div(rd + wr, bw);
  // The first tile's loads cannot overlap compute, nor the last tile's write-back.
  const int64_t fill = ceil_div(input_tile_bits(c, tm, tk) + ceil_div(tk * tn * c.w_bits, L.group_block), bw);
  // (An output charged to its consumers has no drain here either: its whole
  // write is part of the consumers' transfers.)
  const int64_t drain = c.out_bits == 0 ? 0 : ceil_div(tm * tn * mem.output_bits, bw);
  const int64_t overlapped = std::max<int64_t>(0, transfer - fill - drain);
  out.cycles = fill + std::max(c.compute, overlapped) + drain;
  out.compute_cycles = c.compute;
  out.stall_cycles = out.cycles - c.compute;
  out.bound = overlapped > c.compute ? Bound::memory : Bound::compute;
  out.dram_read_bits = rd;
  out.dram_write_bits = wr;
  // On-chip traffic: buffer fills, operand reads by the array, partial-sum
  // read-modify-write once per reduction tile, and the write-back reads.
  const int64_t w_reads =
      c.A.weight_reads_gated
          ? std::llround(double(c.compute) * double(c.A.weight_read_bits_per_cycle) * c.utilisation)
          : c.compute * c.A.weight_read_bits_per_cycle;
  const int64_t w_sram = all_groups(c.w_bits_total) * w_fetch + w_reads;
  const int64_t in_sram = all_groups(c.in_bits) * in_fetch + c.compute * c.A.input_read_bits_per_cycle;
  const int64_t out_sram = all_groups(L.m * L.n * (2 * mem.accumulator_bits * nk + mem.output_bits));
  out.sram_bits = w_sram + in_sram + out_sram;
  // Idle lanes are gated: the array's energy per busy cycle is charged only
  // for the useful fraction of its peak work.
  out.energy_compute_pj = double(c.compute) * en.core_pj_per_cycle * c.utilisation;
  out.energy_sram_pj = double(w_sram) * en.sram_weight_pj_per_bit + double(in_sram) * en.sram_input_pj_per_bit +
                       double(out_sram) * en.sram_output_pj_per_bit;
  out.energy_dram_pj = double(rd + wr) * en.dram_pj_per_bit;
  out.energy_pj = out.energy_compute_pj + out.energy_sram_pj + out.energy_dram_pj;
  out.fits = true;
  out.mapping = Mapping{L.m, L.k, L.n, L.groups, L.group_block, tm, tk, tn, order, w_fetch, in_fetch, {}, false};
  out.mapping.tiles = L.groups * nm * nk * nn;
}

// Which buffer a tiling overflows, or "" if it fits (each buffer holds two tiles).
std::string tiling_overflow(const MapContext& c, const HardwareProfile& p, int64_t tm, int64_t tk, int64_t tn) {
  tm = std::min(tm, c.L.m), tk = std::min(tk, c.L.k), tn = std::min(tn, c.L.n);
  const MemorySpec& mem = p.memory;
  int64_t need_w = 2 * tk * tn * c.w_bits, need_in = 2 * input_tile_bits(c, tm, tk),
          need_out = 2 * tm * tn * mem.accumulator_bits;
  std::string tile = fmt::format("tile {}x{}x{} (M x K x N)", tm, tk, tn);
  if (need_w > mem.weight_buffer_bits)
    return fmt::format("{} needs {} weight buffer bits (two tiles), the profile has {}", tile, need_w, mem.weight_buffer_bits);
  if (need_in > mem.input_buffer_bits)
    return fmt::format("{} needs {} input buffer bits (two tiles), the profile has {}", tile, need_in, mem.input_buffer_bits);
  if (need_out > mem.output_buffer_bits)
    return fmt::format("{} needs {} output buffer bits (two tiles of {}-bit partial sums), the profile has {}",
                       tile, need_out, mem.accumulator_bits, mem.output_buffer_bits);
  return "";
}

void finish_cost(LayerCost& c, const model::Layer& layer, int w_bits, int a_bits, const HardwareProfile& p) {
  if (p.architecture != Architecture::table) {
    // Fixed overheads: a plain additive term after the mapper (they do not change its choice).
    if (c.fits) {
      const int64_t extra = p.overhead.cycles_per_layer + p.overhead.cycles_per_tile * c.mapping.tiles;
      c.cycles += extra;
      c.stall_cycles += extra;
    }
    c.latency_s = double(c.cycles) / p.clock_hz();
  }
  c.layer = layer.name;
  c.w_bits = w_bits;
  c.a_bits = a_bits;
  c.macs = layer.macs * p.batch;
}

}  // namespace

LayerCost simulate_tiling(const model::Layer& layer, int w_bits, int a_bits, const HardwareProfile& p,
                          int64_t tile_m, int64_t tile_k, int64_t tile_n, LoopOrder order,
                          int64_t group_block, const LayerIo& io) {
  check_bits(w_bits, a_bits, p);
  if (p.architecture != Architecture::bit_serial)
    fail(ErrorKind::usage, p.file, "/architecture",
         "simulate_tiling is the bit-serial mapper's; profile '{}' is {} (bit-fusion: simulate_fusion_tiling)",
         p.name, to_string(p.architecture));
  HAQ_ASSERT(tile_m > 0 && tile_k > 0 && tile_n > 0);
  LayerCost out;
  if (p.bit_serial.staged) {
    // BISMO's stages: the tiles are chunks of the padded GEMM (multiples of Dm, Dk, Dn).
    const LoweredLayer L = lower_layer(layer, p.batch, group_block);
    const bismo::Tiling t{tile_m, tile_k, tile_n, order};
    out.reason = bismo::overflow(L, t, w_bits, a_bits, p);
    if (out.reason.empty())
      out = bismo::cost(L, t, w_bits, a_bits, p, double(layer.macs) * double(p.batch) * w_bits * a_bits);
    else
      out.fits = false, out.compute_cycles = compute_cycles(layer, w_bits, a_bits, p, group_block);
    finish_cost(out, layer, w_bits, a_bits, p);
    return out;
  }
  MapContext c = make_context(layer, w_bits, a_bits, p, group_block, io);
  std::string overflow = tiling_overflow(c, p, tile_m, tile_k, tile_n);
  if (overflow.empty()) {
    cost_tiling(c, p, tile_m, tile_k, tile_n, order, out);
  } else {
    out.fits = false;
    out.reason = overflow;
    out.compute_cycles = c.compute;
  }
  finish_cost(out, layer, w_bits, a_bits, p);
  return out;
}

LayerCost simulate_fusion_tiling(const model::Layer& layer, int w_bits, int a_bits, const HardwareProfile& p,
                                 const FusionTiling& tiling, const LayerIo& io, int64_t group_block) {
  check_bits(w_bits, a_bits, p);
  if (p.architecture != Architecture::bit_fusion)
    fail(ErrorKind::usage, p.file, "/architecture", "profile '{}' is {}, not bit-fusion", p.name,
         to_string(p.architecture));
  fusion::Tiling t;
  t.b = tiling.b, t.ow = tiling.ow, t.oh = tiling.oh, t.ic = tiling.ic, t.oc = tiling.oc;
  if (!fusion::parse_order(tiling.order, t.order))
    fail(ErrorKind::usage, "", "", "bad loop order '{}': expected the loops B, OW, OH, IC and OC, each once, "
         "outermost first, separated by '/'", tiling.order);
  LayerCost c = fusion::cost(fusion::lower(layer, p.batch, io, group_block), t, w_bits, a_bits, p);
  finish_cost(c, layer, w_bits, a_bits, p);
  return c;
}

LayerCost simulate_layer(const model::Layer& layer, int w_bits, int a_bits, const HardwareProfile& p,
                         const LayerIo& io) {
  check_bits(w_bits, a_bits, p);
  LayerCost best;
  if (p.architecture == Architecture::table) {
    best = simulate_table(layer, w_bits, a_bits, p);
    finish_cost(best, layer, w_bits, a_bits, p);
    return best;
  }
  if (p.architecture == Architecture::bit_serial && p.bit_serial.staged) {
    best = bismo::best(layer, w_bits, a_bits, p);
    finish_cost(best, layer, w_bits, a_bits, p);
    return best;
  }
  const MemorySpec& mem = p.memory;
  // Grouped convolutions may also run b groups at once as one block-diagonal
  // GEMM (b = 1, 2, 4, ... groups): more zeros multiplied, but a depthwise
  // layer then fills more than one lane of the array's N (and K) dimension.
  // b is the smallest block with the fewest compute cycles (fixed before
  // tiling: letting memory effects pick it makes energy jump between blocks
  // as bits change).
  const int64_t groups = lower_layer(layer, p.batch).groups;
  int64_t block = 1, block_cycles = compute_cycles(layer, w_bits, a_bits, p, 1);
  for (int64_t b = 2; groups > 1; b *= 2) {
    int64_t cycles = compute_cycles(layer, w_bits, a_bits, p, std::min(b, groups));
    if (cycles < block_cycles) block = std::min(b, groups), block_cycles = cycles;
    if (b >= groups) break;
  }
  if (p.architecture == Architecture::bit_fusion) {
    best = fusion::best(fusion::lower(layer, p.batch, io, block), w_bits, a_bits, p);
    finish_cost(best, layer, w_bits, a_bits, p);
    return best;
  }
  best.fits = false;
  LayerCost cand;
  int64_t best_steady = 0;
  {
    const MapContext c = make_context(layer, w_bits, a_bits, p, block, io);
    const auto tms = bismo::tile_candidates(c.L.m, c.A.granule_m);
    const auto tks = bismo::tile_candidates(c.L.k, c.A.granule_k);
    const auto tns = bismo::tile_candidates(c.L.n, c.A.granule_n);
    // Exhaustive over the candidates. Objective: the steady-state time
    // max(compute, DRAM transfer) first, then energy, then total cycles (fill
    // and drain). Ranking by total cycles first would trade a few fill cycles
    // for much more re-fetch traffic (and energy), which no real mapper does.
    // Candidates grow along each loop, so the first overflow ends that loop.
    for (int64_t tk : tks) {
      for (int64_t tn : tns) {
        if (2 * tk * tn * w_bits > mem.weight_buffer_bits) break;
        for (int64_t tm : tms) {
          if (2 * input_tile_bits(c, tm, tk) > mem.input_buffer_bits ||
              2 * tm * tn * mem.accumulator_bits > mem.output_buffer_bits)
            break;
          for (LoopOrder order : {LoopOrder::inputs_outer, LoopOrder::weights_outer}) {
            cost_tiling(c, p, tm, tk, tn, order, cand);
            const int64_t steady = std::max(
                c.compute, ceil_div(cand.dram_read_bits + cand.dram_write_bits, mem.dram_bits_per_cycle));
            if (!best.fits || steady < best_steady ||
                (steady == best_steady && (cand.energy_pj < best.energy_pj ||
                                           (cand.energy_pj == best.energy_pj && cand.cycles < best.cycles)))) {
              best = cand;
              best_steady = steady;
            }
          }
        }
      }
    }
  }
  if (!best.fits) {
    // "Does not fit" is a result, not an exception: say what the smallest tile needs.
    const MapContext c = make_context(layer, w_bits, a_bits, p, 1, io);
    best = LayerCost{};
    best.fits = false;
    best.reason = tiling_overflow(c, p, c.A.granule_m, c.A.granule_k, c.A.granule_n);
    best.compute_cycles = c.compute;
  }
  finish_cost(best, layer, w_bits, a_bits, p);
  return best;
}

const LayerCost& CostTable::at(size_t layer, int w_bits, int a_bits) const {
  if (!supports(w_bits, a_bits))
    fail(ErrorKind::usage, "", fmt::format("layer '{}'", layer < layer_names.size() ? layer_names[layer] : "?"),
         "w{}a{} is outside what profile '{}' supports (w_bits {}..{}, a_bits {}..{})", w_bits,
         a_bits, profile, w_range.min_bits, w_range.max_bits, a_range.min_bits, a_range.max_bits);
  HAQ_ASSERT(layer < layer_names.size());
  const size_t nw = w_range.max_bits - w_range.min_bits + 1;
  const size_t na = a_range.max_bits - a_range.min_bits + 1;
  return costs[(layer * nw + (w_bits - w_range.min_bits)) * na + (a_bits - a_range.min_bits)];
}

std::vector<LayerIo> layer_io(const model::Graph& graph) {
  std::map<std::string, const model::Node*> producer;
  std::map<std::string, std::vector<const model::Node*>> consumers;
  for (const auto& node : graph.nodes) {
    for (const auto& out : node.outputs) producer[out] = &node;
    for (const auto& in : node.inputs)
      if (!in.empty()) consumers[in].push_back(&node);
  }
  std::set<std::string> layer_nodes, graph_outputs;
  for (const auto& layer : graph.layers) layer_nodes.insert(layer.name);
  for (const auto& v : graph.outputs) graph_outputs.insert(v.name);
  // Depth-first walks over values; `seen` keeps them linear in the graph size.
  auto from_layer = [&](const std::string& start) {
    std::set<std::string> seen;
    std::vector<std::string> stack{start};
    while (!stack.empty()) {
      std::string v = stack.back();
      stack.pop_back();
      if (!seen.insert(v).second || graph.is_constant(v)) continue;
      auto it = producer.find(v);
      if (it == producer.end()) continue;  // a graph input
      if (layer_nodes.count(it->second->name)) return true;
      for (const auto& in : it->second->inputs)
        if (!in.empty()) stack.push_back(in);
    }
    return false;
  };
  auto only_to_layers = [&](const std::string& start) {
    std::set<std::string> seen;
    std::vector<std::string> stack{start};
    bool any_consumer = false;
    while (!stack.empty()) {
      std::string v = stack.back();
      stack.pop_back();
      if (!seen.insert(v).second) continue;
      if (graph_outputs.count(v)) return false;
      auto it = consumers.find(v);
      if (it == consumers.end()) continue;  // unused value
      for (const model::Node* node : it->second) {
        if (layer_nodes.count(node->name)) {
          any_consumer = true;
          continue;
        }
        for (const auto& out : node->outputs) stack.push_back(out);
      }
    }
    return any_consumer;
  };
  std::vector<LayerIo> io;
  for (const auto& layer : graph.layers)
    io.push_back({from_layer(layer.input), only_to_layers(layer.output),
                  !layer.input_b.empty() && from_layer(layer.input_b)});
  return io;
}

namespace {

// Everything of a layer (and its LayerIo) a simulator reads but its name:
// layers with the same key cost the same (a table profile is keyed by name).
std::vector<int64_t> shape_key(const model::Layer& l, const LayerIo& io) {
  return {static_cast<int64_t>(l.kind), l.c_in, l.c_out, l.groups, l.kernel_h, l.kernel_w, l.stride_h,
          l.stride_w, l.dilation_h, l.dilation_w, l.pads[0], l.pads[1], l.pads[2], l.pads[3], l.in_h, l.in_w,
          l.out_h, l.out_w, l.rows, l.mats, l.macs, l.weight_params, io.input_from_layer, io.output_to_layer,
          io.input_b_from_layer};
}

}  // namespace

CostTable build_cost_table(const model::Graph& graph, const HardwareProfile& p) {
  CostTable t;
  t.profile = p.name;
  t.architecture = p.architecture;
  t.batch = p.batch;
  t.clock_hz = p.clock_hz();
  t.w_range = p.w_bits;
  t.a_range = p.a_bits;
  const std::vector<LayerIo> io = layer_io(graph);
  const size_t pairs = size_t(p.w_bits.max_bits - p.w_bits.min_bits + 1) * (p.a_bits.max_bits - p.a_bits.min_bits + 1);
  // Networks repeat layer shapes (ResNet-50: 54 layers, 24 shapes): each is simulated once.
  std::map<std::vector<int64_t>, size_t> first_of_shape;
  for (size_t i = 0; i < graph.layers.size(); ++i) {
    const model::Layer& layer = graph.layers[i];
    t.layer_names.push_back(layer.name);
    t.layer_macs.push_back(layer.macs);
    t.layer_weight_params.push_back(layer.weight_params);
    if (p.architecture != Architecture::table) {
      auto [it, inserted] = first_of_shape.emplace(shape_key(layer, io[i]), i);
      if (!inserted) {
        for (size_t k = 0; k < pairs; ++k) {
          LayerCost c = t.costs[it->second * pairs + k];
          c.layer = layer.name;
          t.costs.push_back(std::move(c));
        }
        continue;
      }
    }
    for (int w = p.w_bits.min_bits; w <= p.w_bits.max_bits; ++w)
      for (int a = p.a_bits.min_bits; a <= p.a_bits.max_bits; ++a) {
        t.costs.push_back(simulate_layer(layer, w, a, p, io[i]));
        // A layer the profile cannot run has no latency: an error, never a 0 in the totals.
        if (!t.costs.back().fits)
          fail(ErrorKind::profile, p.file, fmt::format("layer '{}'", layer.name),
               "does not fit profile '{}' at w{}a{}: {}", p.name, w, a, t.costs.back().reason);
      }
  }
  return t;
}

namespace {

void add(CostReport& r, const LayerCost& c) {
  r.fits = r.fits && c.fits;
  r.cycles += c.cycles;
  r.compute_cycles += c.compute_cycles;
  r.stall_cycles += c.stall_cycles;
  r.latency_s += c.latency_s;
  r.energy_pj += c.energy_pj;
  r.energy_compute_pj += c.energy_compute_pj;
  r.energy_sram_pj += c.energy_sram_pj;
  r.energy_dram_pj += c.energy_dram_pj;
  r.dram_bits += c.dram_read_bits + c.dram_write_bits;
  if (c.bound == Bound::memory) ++r.memory_bound_layers;
  r.layers.push_back(c);
}

}  // namespace

CostReport evaluate(const CostTable& table, const quant::Policy& policy) {
  if (policy.layers.size() != table.num_layers())
    fail(ErrorKind::policy, "", "", "the policy has {} layers, the cost table {}",
         policy.layers.size(), table.num_layers());
  CostReport r;
  for (size_t i = 0; i < table.num_layers(); ++i) {
    const auto& lb = policy.layers[i];
    if (lb.layer != table.layer_names[i])
      fail(ErrorKind::policy, "", fmt::format("/layers/{}", i), "policy layer '{}' where the model has '{}'",
           lb.layer, table.layer_names[i]);
    int w = lb.fp32 ? table.w_range.max_bits : lb.w_bits;
    int a = lb.fp32 ? table.a_range.max_bits : lb.a_bits;
    add(r, table.at(i, w, a));
    double wb = lb.fp32 ? 32 : lb.w_bits, ab = lb.fp32 ? 32 : lb.a_bits;
    r.size_bits += table.layer_weight_params[i] * static_cast<int64_t>(wb);
    r.bops += double(table.layer_macs[i]) * wb * ab;
  }
  return r;
}

CostReport evaluate_uniform(const CostTable& table, int w_bits, int a_bits) {
  quant::Policy p;
  for (const auto& name : table.layer_names) p.layers.push_back({name, w_bits, a_bits, false});
  return evaluate(table, p);
}

CostReport evaluate_max_bits(const CostTable& table) {
  return evaluate_uniform(table, table.w_range.max_bits, table.a_range.max_bits);
}

CostReport evaluate_min_bits(const CostTable& table) {
  return evaluate_uniform(table, table.w_range.min_bits, table.a_range.min_bits);
}

int64_t model_size_bits(const model::Graph& graph, const quant::Policy& policy) {
  HAQ_ASSERT(policy.layers.size() == graph.layers.size());
  int64_t bits = 0;
  for (size_t i = 0; i < graph.layers.size(); ++i)
    bits += graph.layers[i].weight_params * (policy.layers[i].fp32 ? 32 : policy.layers[i].w_bits);
  return bits;
}

double policy_bops(const model::Graph& graph, const quant::Policy& policy) {
  HAQ_ASSERT(policy.layers.size() == graph.layers.size());
  double bops = 0;
  for (size_t i = 0; i < graph.layers.size(); ++i) {
    const auto& lb = policy.layers[i];
    double w = lb.fp32 ? 32 : lb.w_bits, a = lb.fp32 ? 32 : lb.a_bits;
    bops += double(graph.layers[i].macs) * w * a;
  }
  return bops;
}

nlohmann::json to_json(const LayerCost& c) {
  nlohmann::json j;
  j["layer"] = c.layer;
  j["w_bits"] = c.w_bits;
  j["a_bits"] = c.a_bits;
  j["fits"] = c.fits;
  if (!c.fits) j["reason"] = c.reason;
  j["macs"] = c.macs;
  j["compute_cycles"] = c.compute_cycles;
  j["stall_cycles"] = c.stall_cycles;
  j["cycles"] = c.cycles;
  j["latency_s"] = c.latency_s;
  j["dram_read_bits"] = c.dram_read_bits;
  j["dram_write_bits"] = c.dram_write_bits;
  j["sram_bits"] = c.sram_bits;
  j["energy_compute_pj"] = c.energy_compute_pj;
  j["energy_sram_pj"] = c.energy_sram_pj;
  j["energy_dram_pj"] = c.energy_dram_pj;
  j["energy_pj"] = c.energy_pj;
  j["bound"] = to_string(c.bound);
  if (c.bound != Bound::measured && c.fits) {
    const auto& m = c.mapping;
    j["mapping"] = {{"gemm_m", m.m}, {"gemm_k", m.k}, {"gemm_n", m.n}, {"groups", m.groups}, {"group_block", m.group_block},
                    {"tile_m", m.tile_m}, {"tile_k", m.tile_k}, {"tile_n", m.tile_n},
                    {"loop_order", m.loops.empty() ? std::string(to_string(m.order)) : m.loops},
                    {"weight_fetches", m.weight_fetches}, {"input_fetches", m.input_fetches}};
    if (!m.loops.empty()) j["mapping"]["im2col"] = m.im2col;
  }
  return j;
}

nlohmann::json to_json(const CostReport& r) {
  nlohmann::json j;
  j["fits"] = r.fits;
  j["cycles"] = r.cycles;
  j["compute_cycles"] = r.compute_cycles;
  j["stall_cycles"] = r.stall_cycles;
  j["latency_s"] = r.latency_s;
  j["energy_pj"] = r.energy_pj;
  j["energy_compute_pj"] = r.energy_compute_pj;
  j["energy_sram_pj"] = r.energy_sram_pj;
  j["energy_dram_pj"] = r.energy_dram_pj;
  j["dram_bits"] = r.dram_bits;
  j["size_bits"] = r.size_bits;
  j["bops"] = r.bops;
  j["memory_bound_layers"] = r.memory_bound_layers;
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& c : r.layers) layers.push_back(to_json(c));
  j["layers"] = layers;
  return j;
}

}  // namespace haq::hw
