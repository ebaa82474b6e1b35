// haq inspect: import a model and print its quantizable layers and totals.
#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "command.h"
#include "haq/core/error.h"
#include "haq/model/graph.h"
#include "haq/model/ops.h"
#include "haq/model/summary.h"

namespace {

struct InspectOptions {
  std::string model;
  bool json = false, ops = false;
  int64_t batch = 1;
};

haq::app::Run setup_inspect(CLI::App& sub) {
  auto opts = std::make_shared<InspectOptions>();
  sub.description("Import an ONNX model and report its quantizable layers (shapes, kernel, stride,\n"
                  "groups, #params, MACs), totals, ops by type, opset and producer.");
  sub.add_option("MODEL", opts->model, "ONNX model file (required unless --ops)");
  sub.add_flag("--ops", opts->ops, "print the table of supported ops (docs/ops.md) and exit");
  sub.add_flag("--json", opts->json, "print the report as JSON (fields in docs/inspect.md)");
  sub.add_option("--batch", opts->batch, "value for a symbolic batch dim (shapes are reported with it)")
      ->check(haq::app::int_in(1, int64_t{1} << 20))
      ->capture_default_str();
  sub.footer(
      "Examples:\n"
      "  haq inspect models/fmnist-mobilenet.onnx\n"
      "  haq inspect models/fmnist-resnet.onnx --json | jq '.totals'\n"
      "  haq inspect models/fmnist-resnet.onnx --batch 16 --json > resnet.json\n"
      "  haq inspect --ops\n" +
      fmt::format("Supported ops: {}.\n", fmt::join(haq::model::supported_ops(), ", ")) +
      "Exit codes: 0 ok, 2 unreadable, malformed or unsupported model.");
  return [opts]() {
    if (opts->ops) {
      fmt::print("{}", haq::model::op_table_markdown());
      return 0;
    }
    if (opts->model.empty())
      haq::fail(haq::ErrorKind::usage, "", "MODEL", "give an ONNX model file (or --ops for the op table)");
    haq::model::ImportOptions io;
    io.batch = opts->batch;
    const haq::model::ModelSummary summary = haq::model::summarize(haq::model::import_onnx(opts->model, io));
    if (opts->json)
      fmt::print("{}\n", haq::model::to_json(summary).dump(2));
    else
      fmt::print("{}", haq::model::format_text(summary));
    return 0;
  };
}

}  // namespace

HAQ_REGISTER_COMMAND(inspect, 10, setup_inspect);
