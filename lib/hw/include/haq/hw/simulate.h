#pragma once
/// \file
/// Latency and energy simulators of bit-flexible accelerators. Pure
/// functions, no I/O: (Layer, bits, HardwareProfile) -> LayerCost, and the
/// per-(model, profile) cost table the search looks up.
/// The models and their formulas are documented in docs/hardware-profiles.md.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "haq/hw/profile.h"
#include "haq/model/graph.h"
#include "haq/quant/policy.h"

namespace haq::hw {

/// Which limit sets a layer's latency.
enum class Bound {
  compute,   ///< the array is busy; DRAM transfers hide behind it
  memory,    ///< DRAM transfers take longer than the compute they feed
  measured,  ///< a `table` profile: measured, no breakdown
};
const char* to_string(Bound b);

/// Order of the tile loops (the reduction loop is always innermost, so
/// partial sums stay in the output buffer and each output is written once).
enum class LoopOrder {
  inputs_outer,   ///< for each input (M) tile, stream all weight (N) tiles
  weights_outer,  ///< for each weight (N) tile, stream all input (M) tiles
};
const char* to_string(LoopOrder o);

/// How the mapper tiled the layer's matrix multiply M x K x N (per group).
struct Mapping {
  int64_t m = 0, k = 0, n = 0;  ///< the lowered GEMM per group
  int64_t groups = 1;            ///< GEMMs run (groups of the layer / group_block)
  int64_t group_block = 1;       ///< layer groups run together as one block-diagonal GEMM
  int64_t tile_m = 0, tile_k = 0, tile_n = 0;
  LoopOrder order = LoopOrder::inputs_outer;
  int64_t weight_fetches = 1;   ///< times the layer's weights are read from DRAM
  int64_t input_fetches = 1;    ///< times the layer's inputs are read from DRAM
  /// bit-fusion: the tile loops, outermost first ("B/OW/OH/IC/OC"; `order` is unused).
  std::string loops;
  /// bit-fusion: the input arrives from the host as im2col columns (one
  /// reduction of kernel area x input channels), as for a network's first layer.
  bool im2col = false;
  /// Tiles computed (all GEMMs): the count OverheadSpec::cycles_per_tile is charged for.
  int64_t tiles = 1;
};

/// Cost of one layer at one (w_bits, a_bits) for one batch of `profile.batch` inputs.
struct LayerCost {
  std::string layer;
  int w_bits = 8, a_bits = 8;
  bool fits = true;          ///< false: no tiling fits the buffers (see `reason`); costs are 0
  std::string reason;
  int64_t macs = 0;          ///< for the whole batch
  int64_t compute_cycles = 0;
  int64_t stall_cycles = 0;  ///< cycles - compute_cycles (DRAM waits, fill and drain)
  int64_t cycles = 0;        ///< total latency in core cycles
  double latency_s = 0;
  int64_t dram_read_bits = 0, dram_write_bits = 0;
  int64_t sram_bits = 0;     ///< on-chip buffer bits read + written
  double energy_compute_pj = 0, energy_sram_pj = 0, energy_dram_pj = 0;
  double energy_pj = 0;      ///< sum of the three
  Bound bound = Bound::compute;
  Mapping mapping;
};

/// The lowered geometry of a layer for a batch: GEMM M x K x N per group,
/// plus the unique input elements per group (for conv, each input element is
/// fetched once per pass, not kernel_h*kernel_w times as in im2col).
struct LoweredLayer {
  int64_t groups = 1;        ///< GEMMs to run (layer groups / group_block)
  int64_t group_block = 1;   ///< layer groups merged block-diagonally into one GEMM
  int64_t layer_groups = 1;  ///< the layer's own groups
  int64_t m = 0, k = 0, n = 0;
  int64_t ic_per_group = 0;  ///< input channels per group
  int64_t kernel_area = 1;   ///< kernel_h * kernel_w
  int64_t input_elems = 0;   ///< unique input elements per group
};
/// With group_block b > 1, a grouped conv runs b groups at a time as one
/// block-diagonal GEMM: groups / b GEMMs of M x (K*b) x (N*b).
LoweredLayer lower_layer(const model::Layer& layer, int64_t batch, int64_t group_block = 1);

/// Compute cycles of a layer on the profile's array (closed form, tile-independent).
int64_t compute_cycles(const model::Layer& layer, int w_bits, int a_bits,
                       const HardwareProfile& profile, int64_t group_block = 1);

/// BitFusion's throughput factor floor(8/max(a,2)) * floor(8/max(w,2)).
int64_t fusion_factor(int w_bits, int a_bits);

/// Which activation writes to DRAM a layer is charged for. Between two
/// accelerator layers the producer requantizes the activation tensor to the
/// bits its consumer reads (the consumer's a_bits) before writing it back, so
/// the write depends on the consumer's bits, not the producer's. To keep a
/// layer's cost a function of its own (w_bits, a_bits) only, that write is
/// charged to the consumer. The default (both false) is a standalone layer:
/// its input is already in DRAM and its output is written at the profile's
/// `output_bits`. (bit-fusion, as BitFusion's simulator, writes every output
/// as accumulator_bits partial sums, charged to the producer; it uses
/// input_from_layer only to tell a host-fed first layer, lowered as im2col.)
struct LayerIo {
  /// The input was written by an earlier accelerator layer at this layer's
  /// a_bits: its write (input elements x a_bits) is charged here.
  bool input_from_layer = false;
  /// Every consumer of the output is an accelerator layer, which pays for
  /// the write: no output write is charged here. False: the output (also)
  /// leaves the accelerator, written at `output_bits`.
  bool output_to_layer = false;
  /// act_matmul: the second operand was written by an earlier accelerator
  /// layer at this layer's w_bits (its bits for that operand): charged here too.
  bool input_b_from_layer = false;
};

/// LayerIo of every layer of a graph, in graph.layers order: a layer's input
/// comes from a layer if walking back through non-layer nodes (activations,
/// pooling, reshapes, Adds) reaches a layer's output; its output goes only to
/// layers if no graph output is reachable from it without passing a layer.
std::vector<LayerIo> layer_io(const model::Graph& graph);

/// Simulates one layer (mapper included). Bits outside the profile's range are
/// Error(usage); a `table` profile without a row for the layer is Error(profile).
LayerCost simulate_layer(const model::Layer& layer, int w_bits, int a_bits,
                         const HardwareProfile& profile, const LayerIo& io = {});

/// bit-fusion's loop nest: tile sizes along batch (rows, for Gemm/MatMul),
/// output width and height, input and output channels, and the order of the
/// five tile loops, outermost first, e.g. "OC/IC/B/OH/OW".
struct FusionTiling {
  int64_t b = 1, ow = 1, oh = 1, ic = 1, oc = 1;
  std::string order = "B/OW/OH/IC/OC";
};

/// Cost of one bit-fusion tiling (clipped to the layer); fits == false with a
/// reason if a tile overflows half its buffer. For tests and tools. An order
/// that is not a permutation of the five loops is Error(usage).
LayerCost simulate_fusion_tiling(const model::Layer& layer, int w_bits, int a_bits,
                                 const HardwareProfile& profile, const FusionTiling& tiling,
                                 const LayerIo& io = {}, int64_t group_block = 1);

/// Cost of one given tiling of the bit-serial mapper (tile sizes are clipped
/// to the GEMM; they should be multiples of the array's granule for the
/// closed-form compute count to hold). fits == false with a reason if it
/// overflows a buffer. For tests and tools; a bit-fusion profile is Error(usage).
LayerCost simulate_tiling(const model::Layer& layer, int w_bits, int a_bits,
                          const HardwareProfile& profile, int64_t tile_m, int64_t tile_k,
                          int64_t tile_n, LoopOrder order, int64_t group_block = 1,
                          const LayerIo& io = {});

/// Every layer x every supported (w_bits, a_bits), computed once.
struct CostTable {
  std::string profile;
  Architecture architecture = Architecture::bit_serial;
  int64_t batch = 1;
  double clock_hz = 0;
  BitRange w_range, a_range;
  std::vector<std::string> layer_names;
  std::vector<int64_t> layer_macs;           ///< per sample
  std::vector<int64_t> layer_weight_params;
  std::vector<LayerCost> costs;              ///< [layer][w - w_min][a - a_min]

  size_t num_layers() const { return layer_names.size(); }
  bool supports(int w_bits, int a_bits) const {
    return w_range.contains(w_bits) && a_range.contains(a_bits);
  }
  /// Cost of layer i at (w, a); Error(usage) if the bits are unsupported.
  const LayerCost& at(size_t layer, int w_bits, int a_bits) const;
};

/// Builds the table (pure; about 64 x #layers simulate_layer calls), each
/// layer simulated with its layer_io(graph).
CostTable build_cost_table(const model::Graph& graph, const HardwareProfile& profile);

/// Totals of a policy on a cost table.
struct CostReport {
  bool fits = true;             ///< every layer fits the buffers
  int64_t cycles = 0, compute_cycles = 0, stall_cycles = 0;
  double latency_s = 0;
  double energy_pj = 0, energy_compute_pj = 0, energy_sram_pj = 0, energy_dram_pj = 0;
  int64_t dram_bits = 0;
  int64_t size_bits = 0;        ///< weight storage: sum of params * w_bits (fp32 layers: 32)
  double bops = 0;              ///< per sample: sum of MACs * w_bits * a_bits (fp32: 32 x 32)
  int memory_bound_layers = 0;
  std::vector<LayerCost> layers;  ///< per layer, in graph order
};

/// Sums per-layer costs. Layers marked fp32 are costed at the profile's
/// highest supported bits (max w, max a): the accelerator has no float path,
/// so this is the closest it can run them. Bits outside the table are Error(usage).
CostReport evaluate(const CostTable& table, const quant::Policy& policy);

/// All layers at (w_bits, a_bits).
CostReport evaluate_uniform(const CostTable& table, int w_bits, int a_bits);
/// The reference for relative budgets: all layers at the highest supported bits (8/8).
CostReport evaluate_max_bits(const CostTable& table);
/// The cheapest point: all layers at the lowest supported bits.
CostReport evaluate_min_bits(const CostTable& table);

/// Weight storage of a policy in bits (fp32 layers count 32 bits per weight).
int64_t model_size_bits(const model::Graph& graph, const quant::Policy& policy);
/// Bit operations per sample: sum of MACs * w_bits * a_bits (fp32 layers count 32 x 32).
double policy_bops(const model::Graph& graph, const quant::Policy& policy);

/// JSON of one layer's cost and of a report (for --json and policy.json).
nlohmann::json to_json(const LayerCost& c);
nlohmann::json to_json(const CostReport& r);

}  // namespace haq::hw
