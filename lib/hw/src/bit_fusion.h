#pragma once
/// \file
/// The bit-fusion simulator (internal to lib/hw): BitFusion's own simulator
/// (Sharma et al., ISCA 2018; github.com/hsharma35/bitfusion, src/optimizer)
/// re-derived for haq's layers. docs/hardware-profiles.md gives the formulas.

#include <array>
#include <cstdint>
#include <string>

#include "haq/hw/simulate.h"

namespace haq::hw::fusion {

/// One convolution as the simulator sees it (a Gemm/MatMul is a 1x1 conv on
/// a 1x1 image with the rows as the batch). `gemms` identical copies run one
/// after another (groups run block by block; batched activation matmuls).
struct Conv {
  int64_t batch = 1, out_h = 1, out_w = 1;
  int64_t kernel_h = 1, kernel_w = 1;  ///< the taps multiplied (MACs)
  int64_t extent_h = 1, extent_w = 1;  ///< the input window of one output: (kernel - 1) * dilation + 1
  int64_t stride_h = 1, stride_w = 1;
  int64_t in_c = 1, out_c = 1;
  int64_t gemms = 1;
  int64_t group_block = 1;  ///< layer groups merged block-diagonally into one conv
  /// The input comes from the host, which lays it out as im2col columns: the
  /// reduction is kernel_h * kernel_w * in_c as one dimension.
  bool im2col = false;
};

/// The five tile loops, in the reference's names.
enum Loop : int { loop_b = 0, loop_ow, loop_oh, loop_ic, loop_oc };
constexpr int kLoops = 5;

/// Tile sizes and loop order (order[0] is the outermost loop).
struct Tiling {
  int64_t b = 1, ow = 1, oh = 1, ic = 1, oc = 1;
  std::array<int, kLoops> order{loop_b, loop_ow, loop_oh, loop_ic, loop_oc};
};

/// The lowering of a layer (block: groups merged per conv, >= 1).
Conv lower(const model::Layer& layer, int64_t batch, const LayerIo& io, int64_t group_block = 1);

/// The whole cost of one tiling, or fits == false (a tile overflows half its
/// buffer: the buffers are double-buffered).
LayerCost cost(const Conv& conv, const Tiling& t, int w_bits, int a_bits, const HardwareProfile& p);

/// The reference's mapper: every tile size (powers of two, the batch and
/// output tiles square), every loop order; fewest cycles, then least energy.
LayerCost best(const Conv& conv, int w_bits, int a_bits, const HardwareProfile& p);

/// "B/OW/OH/IC/OC" style name of a loop order, outermost first.
std::string order_name(const std::array<int, kLoops>& order);
/// Parses such a name (each of the five loops once); false if it is not one.
bool parse_order(const std::string& name, std::array<int, kLoops>& order);

}  // namespace haq::hw::fusion
