#pragma once
// Layers and profiles built in code for the simulator tests.
#include <fstream>
#include <string>
#include <vector>

#include "haq/hw/profile.h"
#include "haq/model/graph.h"
#include "test_paths.h"

namespace haq::test {

/// The data rows of a test CSV (path relative to the source tree): '#'
/// comment lines and the header skipped, cells split at every comma.
inline std::vector<std::vector<std::string>> csv_rows(const std::string& rel) {
  std::vector<std::vector<std::string>> out;
  std::ifstream in(source_path(rel));
  std::string line;
  bool header = true;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (header) {
      header = false;
      continue;
    }
    std::vector<std::string> cells;
    size_t start = 0;
    for (size_t comma; (comma = line.find(',', start)) != std::string::npos; start = comma + 1)
      cells.push_back(line.substr(start, comma - start));
    cells.push_back(line.substr(start));
    out.push_back(cells);
  }
  return out;
}

/// A conv layer with "same" padding: out = ceil(in / stride).
inline model::Layer conv_layer(const std::string& name, int64_t c_in, int64_t c_out, int64_t kernel,
                               int64_t stride, int64_t in_hw, int64_t groups = 1) {
  model::Layer l;
  l.name = name;
  l.kind = model::LayerKind::conv;
  l.c_in = c_in;
  l.c_out = c_out;
  l.groups = groups;
  l.kernel_h = l.kernel_w = kernel;
  l.stride_h = l.stride_w = stride;
  l.in_h = l.in_w = in_hw;
  l.out_h = l.out_w = (in_hw + stride - 1) / stride;
  l.depthwise = groups > 1 && groups == c_in && groups == c_out;
  l.weight_params = c_out * (c_in / groups) * kernel * kernel;
  l.params = l.weight_params + c_out;
  l.macs = l.out_h * l.out_w * l.weight_params;
  return l;
}

/// A fully-connected (Gemm) layer; `rows` rows per sample.
inline model::Layer fc_layer(const std::string& name, int64_t c_in, int64_t c_out, int64_t rows = 1) {
  model::Layer l;
  l.name = name;
  l.kind = model::LayerKind::gemm;
  l.c_in = c_in;
  l.c_out = c_out;
  l.rows = rows;
  l.weight_params = c_in * c_out;
  l.params = l.weight_params + c_out;
  l.macs = rows * l.weight_params;
  return l;
}

/// A spread of shapes: dense, first-layer, depthwise, pointwise, FC, big FC, MatMul rows.
inline std::vector<model::Layer> test_layers() {
  return {conv_layer("conv3x3", 64, 64, 3, 1, 56),      conv_layer("first", 3, 32, 3, 2, 224),
          conv_layer("dw", 144, 144, 3, 1, 56, 144),    conv_layer("pw", 144, 24, 1, 1, 56),
          conv_layer("dw_s2", 96, 96, 3, 2, 112, 96),   fc_layer("fc", 1280, 1000),
          fc_layer("big_fc", 4096, 4096),               fc_layer("rows", 768, 768, 128)};
}

inline model::Graph graph_of(std::vector<model::Layer> layers) {
  model::Graph g;
  g.layers = std::move(layers);
  return g;
}

/// Edge-like bit-serial profile: 8x256x8, 64 DRAM bits/cycle, 2/2/0.25 Mbit buffers.
inline hw::HardwareProfile bit_serial_profile() {
  hw::HardwareProfile p;
  p.file = "test-bit-serial.json";
  p.name = "test-bit-serial";
  p.architecture = hw::Architecture::bit_serial;
  p.batch = 1;
  p.clock_mhz = 200;
  p.memory = {64, 2097152, 2097152, 262144, 32, 8};
  p.energy = {10, 0.1, 0.1, 0.1, 20};
  p.bit_serial = {8, 256, 8, false, {}};
  return p;
}

/// BitFusion-like profile: 16x32, 192 DRAM bits/cycle, DESIGN's energies.
inline hw::HardwareProfile bit_fusion_profile() {
  hw::HardwareProfile p;
  p.file = "test-bit-fusion.json";
  p.name = "test-bit-fusion";
  p.architecture = hw::Architecture::bit_fusion;
  p.batch = 1;
  p.clock_mhz = 500;
  p.memory = {192, 524288, 262144, 131072, 32, 8};
  p.energy = {235, 0.02, 0.05, 0.11, 15};
  p.bit_fusion = {16, 32};
  return p;
}

}  // namespace haq::test
