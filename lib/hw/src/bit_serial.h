#pragma once
/// \file
/// The staged bit-serial simulator (internal to lib/hw): BISMO's organisation
/// (Umuroglu, Rasnayake, Sjalander, FPL 2018; Umuroglu et al., ACM TRETS 2019;
/// the overlay's sources, github.com/EECS-NTNU/bismo) for profiles whose
/// `bit_serial` section has `stages`. docs/hardware-profiles.md gives the
/// formulas; profiles without `stages` use the ideal model in simulate.cpp.
///
/// What the model takes from the hardware:
///  - the host lowers a convolution to a matrix (im2row) and packs both
///    operands bit-serially, each row padded to whole Dk-bit words and the
///    rows to whole Dm (Dn) blocks: the fetch stage streams those padded
///    bit-planes, LHS (activations) and RHS (weights) over one DRAM read
///    channel;
///  - the execute stage runs, per Dm x Dn result tile, w*a instructions of
///    ceil(K/Dk) cycles each, back to back, then drains its pipeline and
///    exchanges tokens with the other stages before the next tile;
///  - the result stage writes each tile's Dm*Dn accumulators (32-bit) over
///    its own DRAM write channel; the host requantizes them;
///  - the three stages overlap (double-buffered operand regions, two result
///    buffers): the slowest stage bounds, plus what cannot overlap (the first
///    fetch, the last tile's execute and write-back), and the DRAM behind both
///    channels bounds their sum;
///  - a grouped (depthwise) convolution runs its groups as GEMMs of their own
///    (K = kernel area x channels per group, far below Dk) or, if faster,
///    several groups as one block-diagonal GEMM whose zero blocks are real
///    bits in the packed weights.

#include <cstdint>
#include <string>
#include <vector>

#include "haq/hw/simulate.h"

namespace haq::hw::bismo {

/// One mapping: chunks of the padded GEMM held on chip at once (tm rows of
/// LHS, tn rows of RHS, tk of the reduction; multiples of Dm, Dn, Dk), and
/// which operand's chunk stays while the other streams.
struct Tiling {
  int64_t tm = 0, tk = 0, tn = 0;
  LoopOrder order = LoopOrder::weights_outer;
};

/// "" if the tiling fits the buffers (each holds two chunks; the result
/// buffer two Dm x Dn tiles), else what overflows.
std::string overflow(const LoweredLayer& L, const Tiling& t, int w_bits, int a_bits, const HardwareProfile& p);

/// Cost of one tiling that fits (fills every LayerCost field but layer, bits,
/// macs and latency_s). `binary_macs`: the layer's useful binary MACs.
LayerCost cost(const LoweredLayer& L, const Tiling& t, int w_bits, int a_bits, const HardwareProfile& p,
               double binary_macs);

/// Tile (chunk) sizes tried along one dimension: the granule times powers of
/// two, then the whole dimension. Shared with the ideal mapper.
std::vector<int64_t> tile_candidates(int64_t dim, int64_t granule);

/// The mapper. The group block (1, 2, 4, ... groups run as one GEMM) is
/// the one with the fewest cycles at the profile's highest bits, kept for
/// every bitwidth (the host's layout of the layer). The tiling (every chunk
/// size: the granule times powers of two, or all of the dimension; both
/// orders) is the one with the least energy, then the fewest cycles: all
/// tilings do the same work, so that is the least re-fetch traffic, as a
/// runtime that keeps as much on chip as fits. (Ranking by cycles first buys
/// the last fill cycles with much more traffic, and energy rises as bits
/// fall.) fits == false with the reason if nothing fits.
LayerCost best(const model::Layer& layer, int w_bits, int a_bits, const HardwareProfile& p);

}  // namespace haq::hw::bismo
