#include "bit_fusion.h"

#include <algorithm>

#include "haq/core/error.h"

namespace haq::hw::fusion {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Smallest k with 2^k >= n (n >= 1).
int ceil_log2(int64_t n) {
  int k = 0;
  while ((int64_t{1} << k) < n) ++k;
  return k;
}

// The three on-chip buffers, as bits in a mask of the loops they depend on.
enum Buffer : int { buf_act = 0, buf_wgt, buf_out };
constexpr int kBuffers = 3;
constexpr int dep_mask(int loop) {
  // B, OW, OH index inputs and outputs; IC inputs and weights; OC weights and outputs.
  return loop == loop_ic ? (1 << buf_act) | (1 << buf_wgt)
         : loop == loop_oc ? (1 << buf_wgt) | (1 << buf_out)
                           : (1 << buf_act) | (1 << buf_out);
}

const char* loop_name(int loop) {
  static const char* names[kLoops] = {"B", "OW", "OH", "IC", "OC"};
  return names[loop];
}

// What a tiling fixes before the loop order: tile sizes, loop trip counts,
// compute, and the on-chip accesses of the innermost (stationary) loops.
struct TileCosts {
  bool fits = false;
  int64_t trips[kLoops]{};
  int64_t tile_bits[kBuffers]{};  // one tile of each buffer
  int64_t half[kBuffers]{};       // half of each buffer (the other half is being filled)
  int64_t compute = 0;            // cycles, all tiles
  int64_t sram_read[kBuffers]{};  // array reads of the buffers (inner loops)
  int64_t sram_inner_out_writes = 0;
};

TileCosts tile_costs(const Conv& c, const Tiling& t, int w_bits, int a_bits, const HardwareProfile& p) {
  TileCosts tc;
  const int64_t n = p.bit_fusion.rows, m = p.bit_fusion.cols;
  const int64_t lanes = n * fusion_factor(w_bits, a_bits);  // reduction elements per cycle
  const int64_t acc = p.memory.accumulator_bits;
  const int64_t taps = c.kernel_h * c.kernel_w;
  const int64_t oc_padded = ceil_div(t.oc, m) * m;
  // Weights are padded to whole reduction steps (the fusion factor times the rows).
  tc.tile_bits[buf_wgt] = ceil_div(taps * t.ic, lanes) * lanes * t.oc * w_bits;
  if (c.im2col) {
    tc.tile_bits[buf_act] = t.ow * t.oh * taps * t.ic * t.b * a_bits;
  } else {
    // A tile of outputs reads its input window, halo included.
    const int64_t iw = c.extent_w + (t.ow - 1) * c.stride_w, ih = c.extent_h + (t.oh - 1) * c.stride_h;
    tc.tile_bits[buf_act] = iw * ih * t.ic * t.b * a_bits;
  }
  tc.tile_bits[buf_out] = t.ow * t.oh * oc_padded * t.b * acc;
  tc.half[buf_act] = p.memory.input_buffer_bits / 2;
  tc.half[buf_wgt] = p.memory.weight_buffer_bits / 2;
  tc.half[buf_out] = p.memory.output_buffer_bits / 2;
  for (int b = 0; b < kBuffers; ++b)
    if (tc.tile_bits[b] > tc.half[b]) return tc;
  tc.fits = true;
  tc.trips[loop_b] = ceil_div(c.batch, t.b);
  tc.trips[loop_ow] = ceil_div(c.out_w, t.ow);
  tc.trips[loop_oh] = ceil_div(c.out_h, t.oh);
  tc.trips[loop_ic] = ceil_div(c.in_c, t.ic);
  tc.trips[loop_oc] = ceil_div(c.out_c, t.oc);
  int64_t tiles = 1;
  for (int64_t trips : tc.trips) tiles *= trips;
  // Every tile is a full tile (the last one along a loop is computed whole).
  const int64_t per_tile = c.im2col
      ? t.b * t.oh * t.ow * ceil_div(t.oc, m) * ceil_div(taps * t.ic, lanes)
      : t.b * ceil_div(t.oc, m) * t.ow * t.oh * taps * ceil_div(t.ic, lanes);
  tc.compute = tiles * per_tile;
  // Inner loops: the array keeps one operand stationary, whichever moves the
  // fewest bits (input-, output- or weight-stationary).
  const int64_t oc_loop = oc_padded;
  const int64_t red_loop = c.im2col ? ceil_div(t.ic * taps, lanes) * lanes : ceil_div(t.ic, lanes) * lanes * taps;
  const int64_t pos_loop = t.b * t.oh * t.ow;
  const int64_t is_bits = red_loop * pos_loop * (a_bits + oc_loop * (w_bits + acc));
  const int64_t os_bits = oc_loop * pos_loop * (acc + red_loop * (a_bits + w_bits));
  const int64_t ws_bits = red_loop * oc_loop * (w_bits + pos_loop * (a_bits + acc));
  const int64_t least = std::min({is_bits, os_bits, ws_bits});
  const int64_t inputs = taps * t.ic * t.oh * t.ow * t.b;  // input values of a tile's products
  const int64_t outs = t.oc * t.oh * t.ow * t.b;
  if (is_bits == least) {
    tc.sram_read[buf_act] = tiles * inputs * a_bits;
    tc.sram_read[buf_out] = tc.sram_inner_out_writes = tiles * inputs * t.oc * acc;
    tc.sram_read[buf_wgt] = tiles * inputs * t.oc * w_bits;
  } else if (os_bits == least) {
    tc.sram_read[buf_act] = tiles * outs * taps * t.ic * a_bits;
    tc.sram_read[buf_out] = tc.sram_inner_out_writes = tiles * outs * acc;
    tc.sram_read[buf_wgt] = tiles * outs * taps * t.ic * w_bits;
  } else {
    const int64_t weights = taps * t.ic * t.oc;
    tc.sram_read[buf_act] = tiles * weights * pos_loop * a_bits;
    tc.sram_read[buf_out] = tc.sram_inner_out_writes = tiles * weights * pos_loop * acc;
    tc.sram_read[buf_wgt] = tiles * weights * w_bits;
  }
  return tc;
}

// DRAM traffic of a loop order. Walking from the innermost loop out, a
// buffer's data grows with each loop it depends on while it still fits in
// half the buffer (it stays on chip across the loops it does not depend on);
// once it no longer fits, every outer loop re-fetches it.
struct Traffic {
  int64_t total[kBuffers]{};  // bits moved from DRAM (outputs: also written back)
  int64_t first[kBuffers]{};  // the largest block that fitted: the initial fill (and final drain)
  int64_t refetch[kBuffers]{1, 1, 1};  // trips of loops it does not depend on that re-fetch it
};

struct LoopStep {
  int deps;       // dep_mask of the loop
  int64_t trips;  // > 1
  bool operator<(const LoopStep& o) const { return deps != o.deps ? deps < o.deps : trips < o.trips; }
  bool operator==(const LoopStep& o) const { return deps == o.deps && trips == o.trips; }
};

// steps[0] is the outermost loop.
Traffic traffic(const TileCosts& tc, const LoopStep* steps, int count) {
  Traffic tr;
  bool resident[kBuffers] = {true, true, true};
  for (int b = 0; b < kBuffers; ++b) tr.total[b] = tr.first[b] = tc.tile_bits[b];
  for (int i = count - 1; i >= 0; --i) {
    for (int b = 0; b < kBuffers; ++b) {
      const bool depends = (steps[i].deps >> b) & 1;
      if (resident[b]) {
        if (!depends) continue;
        tr.total[b] *= steps[i].trips;
        if (tr.total[b] > tc.half[b])
          resident[b] = false;
        else
          tr.first[b] = tr.total[b];
      } else {
        tr.total[b] *= steps[i].trips;
        if (!depends) tr.refetch[b] *= steps[i].trips;
      }
    }
  }
  return tr;
}

struct Timing {
  int64_t cycles = 0, stall = 0, dram_read = 0, dram_write = 0;
  bool memory_bound = false;
};

Timing timing(const TileCosts& tc, const Traffic& tr, int64_t bw) {
  Timing t;
  // Inputs, weights and the partial sums of the outputs are read; the partial
  // sums are written back as often as they are read.
  t.dram_read = tr.total[buf_act] + tr.total[buf_wgt] + tr.total[buf_out];
  t.dram_write = tr.total[buf_out];
  const int64_t fill = tr.first[buf_act] + tr.first[buf_wgt] + tr.first[buf_out];
  const int64_t drain = tr.first[buf_out];
  // The first fill and the last drain do not overlap compute; the rest does.
  const int64_t latency = ceil_div(fill, bw) + ceil_div(drain, bw);
  const int64_t overlapped = ceil_div(t.dram_read + t.dram_write - fill - drain, bw);
  t.stall = std::max<int64_t>(0, overlapped - tc.compute) + latency;
  t.cycles = tc.compute + t.stall;
  t.memory_bound = overlapped > tc.compute;
  return t;
}

struct EnergyParts {
  double compute = 0, sram = 0, dram = 0;
};

EnergyParts energy(const TileCosts& tc, const Traffic& tr, const Timing& t, const HardwareProfile& p) {
  const EnergySpec& e = p.energy;
  EnergyParts out;
  out.compute = double(tc.compute) * e.core_pj_per_cycle;
  // Buffer writes: each DRAM fill; outputs also by the array. Reads: by the array;
  // outputs also on each write-back.
  const double w = double(tr.total[buf_wgt] + tc.sram_read[buf_wgt]);
  const double in = double(tr.total[buf_act] + tc.sram_read[buf_act]);
  const double o = 2.0 * double(tr.total[buf_out] + tc.sram_inner_out_writes);
  out.sram = w * e.sram_weight_pj_per_bit + in * e.sram_input_pj_per_bit + o * e.sram_output_pj_per_bit;
  out.dram = double(t.dram_read + t.dram_write) * e.dram_pj_per_bit;
  return out;
}

// The loop steps of an order (loops with one trip do nothing and are left out).
int active_steps(const TileCosts& tc, const std::array<int, kLoops>& order, LoopStep* steps) {
  int count = 0;
  for (int loop : order)
    if (tc.trips[loop] > 1) steps[count++] = LoopStep{dep_mask(loop), tc.trips[loop]};
  return count;
}

LayerCost to_cost(const Conv& c, const Tiling& t, const TileCosts& tc, const Traffic& tr, const Timing& tm,
                  const HardwareProfile& p) {
  LayerCost out;
  const EnergyParts e = energy(tc, tr, tm, p);
  const auto g = c.gemms;
  out.fits = true;
  out.compute_cycles = tc.compute * g;
  out.stall_cycles = tm.stall * g;
  out.cycles = tm.cycles * g;
  out.dram_read_bits = tm.dram_read * g;
  out.dram_write_bits = tm.dram_write * g;
  out.sram_bits = g * (tr.total[buf_wgt] + tc.sram_read[buf_wgt] + tr.total[buf_act] + tc.sram_read[buf_act] +
                       2 * (tr.total[buf_out] + tc.sram_inner_out_writes));
  out.energy_compute_pj = e.compute * double(g);
  out.energy_sram_pj = e.sram * double(g);
  out.energy_dram_pj = e.dram * double(g);
  out.energy_pj = out.energy_compute_pj + out.energy_sram_pj + out.energy_dram_pj;
  out.bound = tm.memory_bound ? Bound::memory : Bound::compute;
  Mapping& mp = out.mapping;
  mp.m = c.batch * c.out_h * c.out_w;
  mp.k = c.kernel_h * c.kernel_w * c.in_c;
  mp.n = c.out_c;
  mp.groups = c.gemms;
  mp.group_block = c.group_block;
  mp.tile_m = t.b * t.oh * t.ow;
  mp.tile_k = c.kernel_h * c.kernel_w * t.ic;
  mp.tile_n = t.oc;
  mp.input_fetches = tr.refetch[buf_act];
  mp.weight_fetches = tr.refetch[buf_wgt];
  mp.loops = order_name(t.order);
  mp.im2col = c.im2col;
  mp.tiles = g;
  for (int64_t trips : tc.trips) mp.tiles *= trips;
  return out;
}

}  // namespace

std::string order_name(const std::array<int, kLoops>& order) {
  std::string s;
  for (int loop : order) {
    if (!s.empty()) s += '/';
    s += loop_name(loop);
  }
  return s;
}

bool parse_order(const std::string& name, std::array<int, kLoops>& order) {
  bool seen[kLoops] = {};
  int count = 0;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = std::min(name.find('/', start), name.size());
    const std::string part = name.substr(start, end - start);
    int loop = -1;
    for (int l = 0; l < kLoops; ++l)
      if (part == loop_name(l)) loop = l;
    if (loop < 0 || seen[loop] || count == kLoops) return false;
    seen[loop] = true;
    order[count++] = loop;
    start = end + 1;
  }
  return count == kLoops;
}

Conv lower(const model::Layer& layer, int64_t batch, const LayerIo& io, int64_t group_block) {
  Conv c;
  if (layer.kind == model::LayerKind::conv) {
    const int64_t groups = std::max<int64_t>(1, layer.groups);
    const int64_t block = std::clamp<int64_t>(group_block, 1, groups);
    c.batch = batch;
    c.out_h = layer.out_h, c.out_w = layer.out_w;
    c.kernel_h = layer.kernel_h, c.kernel_w = layer.kernel_w;
    c.extent_h = (layer.kernel_h - 1) * layer.dilation_h + 1;
    c.extent_w = (layer.kernel_w - 1) * layer.dilation_w + 1;
    c.stride_h = layer.stride_h, c.stride_w = layer.stride_w;
    c.in_c = layer.c_in / groups * block;
    c.out_c = layer.c_out / groups * block;
    c.gemms = ceil_div(groups, block);
    c.group_block = block;
    c.im2col = !io.input_from_layer;
  } else if (layer.kind == model::LayerKind::act_matmul) {
    // Each product of each sample is a matrix multiply of its own, its second
    // operand streamed in as the "weights".
    c.batch = std::max<int64_t>(1, layer.rows);
    c.in_c = layer.c_in, c.out_c = layer.c_out;
    c.gemms = batch * std::max<int64_t>(1, layer.mats);
  } else {
    // A fully connected layer: a 1x1 conv with the rows (tokens) as the batch.
    c.batch = batch * std::max<int64_t>(1, layer.rows);
    c.in_c = layer.c_in, c.out_c = layer.c_out;
  }
  return c;
}

LayerCost cost(const Conv& c, const Tiling& t, int w_bits, int a_bits, const HardwareProfile& p) {
  Tiling tt = t;
  tt.b = std::min(t.b, c.batch), tt.ow = std::min(t.ow, c.out_w), tt.oh = std::min(t.oh, c.out_h);
  tt.ic = std::min(t.ic, c.in_c), tt.oc = std::min(t.oc, c.out_c);
  const TileCosts tc = tile_costs(c, tt, w_bits, a_bits, p);
  if (!tc.fits) {
    LayerCost out;
    out.fits = false;
    static const char* names[kBuffers] = {"input", "weight", "output"};
    for (int b = 0; b < kBuffers; ++b)
      if (tc.tile_bits[b] > tc.half[b]) {
        out.reason = fmt::format("tile b{} oh{} ow{} ic{} oc{} needs {} {} buffer bits, half the buffer is {}",
                                 tt.b, tt.oh, tt.ow, tt.ic, tt.oc, tc.tile_bits[b], names[b], tc.half[b]);
        break;
      }
    return out;
  }
  LoopStep steps[kLoops];
  const int count = active_steps(tc, tt.order, steps);
  const Traffic tr = traffic(tc, steps, count);
  return to_cost(c, tt, tc, tr, timing(tc, tr, p.memory.dram_bits_per_cycle), p);
}

LayerCost best(const Conv& c, int w_bits, int a_bits, const HardwareProfile& p) {
  const int64_t m = p.bit_fusion.cols;
  const int64_t bw = p.memory.dram_bits_per_cycle;
  const int b_max = ceil_log2(c.batch), o_max = ceil_log2(std::max(c.out_h, c.out_w));
  const int ic_max = ceil_log2(c.in_c);
  // Output-channel tiles are whole array columns, except for im2col layers.
  const int oc_max = c.im2col ? ceil_log2(c.out_c) : ceil_log2(ceil_div(c.out_c, m));
  bool found = false;
  int64_t best_cycles = 0;
  double best_energy = 0;
  Tiling best_t;
  TileCosts best_tc;
  Traffic best_tr;
  Timing best_tm;
  for (int kb = 0; kb <= b_max; ++kb) {
    for (int ko = 0; ko <= o_max; ++ko) {
      for (int ki = 0; ki <= ic_max; ++ki) {
        for (int kc = 0; kc <= oc_max; ++kc) {
          Tiling t;
          t.b = std::min(int64_t{1} << kb, c.batch);
          t.ow = std::min(int64_t{1} << ko, c.out_w);
          t.oh = std::min(int64_t{1} << ko, c.out_h);
          t.ic = std::min(int64_t{1} << ki, c.in_c);
          t.oc = std::min((int64_t{1} << kc) * (c.im2col ? 1 : m), c.out_c);
          const TileCosts tc = tile_costs(c, t, w_bits, a_bits, p);
          if (!tc.fits) continue;
          if (found) {
            // No order beats the compute plus the first fill and last drain
            // of one tile each, nor moves less than every buffer's data once.
            int64_t once = tc.tile_bits[buf_out];  // the write-back
            for (int b = 0; b < kBuffers; ++b) {
              int64_t bits = tc.tile_bits[b];
              for (int loop = 0; loop < kLoops; ++loop)
                if ((dep_mask(loop) >> b) & 1) bits *= tc.trips[loop];
              once += b == buf_out ? bits - tc.tile_bits[buf_out] + bits : bits;
            }
            const int64_t fill = tc.tile_bits[buf_act] + tc.tile_bits[buf_wgt] + tc.tile_bits[buf_out];
            if (tc.compute + ceil_div(fill, bw) + ceil_div(tc.tile_bits[buf_out], bw) > best_cycles ||
                ceil_div(once, bw) > best_cycles)
              continue;
          }
          // Every distinct order of the loops that run more than once: loops
          // with the same buffers and trip count are interchangeable.
          LoopStep steps[kLoops];
          std::array<int, kLoops> all{loop_b, loop_ow, loop_oh, loop_ic, loop_oc};
          const int count = active_steps(tc, all, steps);
          // (Insertion sort: std::sort on five elements trips GCC 12's -Warray-bounds.)
          for (int i = 1; i < count; ++i)
            for (int j = i; j > 0 && steps[j] < steps[j - 1]; --j) std::swap(steps[j], steps[j - 1]);
          do {
            const Traffic tr = traffic(tc, steps, count);
            // cycles >= all traffic / bandwidth: skip the divisions when that already loses.
            if (found && (2 * tr.total[buf_out] + tr.total[buf_act] + tr.total[buf_wgt]) > best_cycles * bw) continue;
            const Timing tm = timing(tc, tr, bw);
            if (found && tm.cycles > best_cycles) continue;
            const EnergyParts e = energy(tc, tr, tm, p);
            const double en = e.compute + e.sram + e.dram;
            if (!found || tm.cycles < best_cycles || en < best_energy) {
              found = true;
              best_cycles = tm.cycles, best_energy = en;
              best_tc = tc, best_tr = tr, best_tm = tm;
              // Name the order: loops that run once outermost, then the steps.
              std::array<int, kLoops> order{};
              bool used[kLoops] = {};
              int pos = 0;
              for (int loop = 0; loop < kLoops; ++loop)
                if (tc.trips[loop] <= 1) order[pos++] = loop, used[loop] = true;
              for (int i = 0; i < count; ++i)
                for (int loop = 0; loop < kLoops; ++loop)
                  if (!used[loop] && dep_mask(loop) == steps[i].deps && tc.trips[loop] == steps[i].trips) {
                    order[pos++] = loop, used[loop] = true;
                    break;
                  }
              t.order = order;
              best_t = t;
            }
          } while (std::next_permutation(steps, steps + count));
        }
      }
    }
  }
  if (!found) {
    LayerCost out;
    out.fits = false;
    Tiling smallest;
    smallest.oc = c.im2col ? 1 : m;
    out = cost(c, smallest, w_bits, a_bits, p);
    if (out.fits) HAQ_ASSERT(false && "the smallest tiling fits but the search found none");
    return out;
  }
  return to_cost(c, best_t, best_tc, best_tr, best_tm, p);
}

}  // namespace haq::hw::fusion
