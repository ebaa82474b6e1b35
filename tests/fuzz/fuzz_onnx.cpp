// Fuzz target: the ONNX importer from bytes, then the summary, as `haq inspect`
// does: protobuf parse, checks, topological sort, shape inference, constant
// folding, BatchNorm folding, layer recognition, totals.
#include <string>

#include "fuzz_harness.h"
#include "haq/model/graph.h"
#include "haq/model/summary.h"

namespace haq::fuzz {

Outcome run_onnx(const uint8_t* data, size_t size) {
  // External data resolves against this folder, which does not exist: the
  // fuzzer cannot make the importer read files of this machine.
  static const std::string kSource = "/nonexistent/haq-fuzz/model.onnx";
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  return guarded([&] {
    const model::Graph g = model::import_onnx_bytes(bytes, kSource);
    const model::ModelSummary s = model::summarize(g);
    (void)model::to_json(s).dump();
    (void)model::format_text(s);
  });
}

}  // namespace haq::fuzz

HAQ_FUZZ_TARGET(haq::fuzz::run_onnx)
