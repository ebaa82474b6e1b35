// Label maps (class folder name -> index): a JSON object or a text file with
// one class name per line; and the inference batch a run can afford.

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "haq/core/error.h"
#include "haq/core/files.h"
#include "haq/core/json_reader.h"
#include "haq/data/dataset.h"

namespace haq::data {

namespace {

/// Index limit of a map: what the model predicts, else a bound that keeps
/// class_names (sized max index + 1) small.
constexpr int64_t kMaxClassIndex = (int64_t{1} << 20) - 1;

void check_unique(const LabelMap& m) {
  std::map<std::string, size_t> by_name;
  std::map<int32_t, size_t> by_index;
  for (size_t i = 0; i < m.names.size(); ++i) {
    auto n = by_name.emplace(m.names[i], i);
    if (!n.second)
      fail(ErrorKind::data, m.file, m.where[i], "class '{}' is listed twice (also at {})",
           m.names[i], m.where[n.first->second]);
    auto k = by_index.emplace(m.indices[i], i);
    if (!k.second)
      fail(ErrorKind::data, m.file, m.where[i],
           "class '{}' has index {}, which '{}' ({}) has too: each index names one class",
           m.names[i], m.indices[i], m.names[k.first->second], m.where[k.first->second]);
  }
}

}  // namespace

LabelMap read_label_map(const std::string& path, int64_t num_classes) {
  LabelMap m;
  m.file = path;
  const std::string text = haq::read_file(path);
  const int64_t top = num_classes > 0 ? num_classes - 1 : kMaxClassIndex;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    JsonValue root = parse_json(text, path, ErrorKind::data);
    JsonObject obj = root.object();
    for (const auto& item : root.raw().items()) {
      JsonValue v = obj.get(item.key());
      if (item.key().empty()) obj.fail_at(item.key(), "empty class name");
      if (num_classes > 0 && v.raw().is_number_integer() && v.raw().get<int64_t>() > top)
        v.fail(fmt::format("index {} out of range 0..{} (the model has {} outputs)",
                           v.raw().get<int64_t>(), top, num_classes));
      m.names.push_back(item.key());
      m.indices.push_back(static_cast<int32_t>(v.as_int(0, top)));
      m.where.push_back(obj.pointer_of(item.key()));
    }
    obj.finish();
  } else {
    // One class per line: line k is index k-1; the first word is the folder
    // name (so "n01440764 tench, Tinca tinca" lines work). A final newline
    // ends the last line; any other empty line is an error, since it would
    // shift every index after it.
    size_t start = 0;
    int64_t line = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string row = text.substr(start, end - start);
      start = end + 1;
      ++line;
      const std::string where = fmt::format("line {}", line);
      const size_t a = row.find_first_not_of(" \t\r");
      if (a == std::string::npos)
        fail(ErrorKind::data, path, where,
             "empty line: each line names the class whose index is its line number - 1");
      const size_t b = row.find_first_of(" \t\r", a);
      if (line - 1 > top)
        fail(ErrorKind::data, path, where,
             "class index {} out of range 0..{} (the model has {} outputs)", line - 1, top,
             num_classes);
      m.names.push_back(row.substr(a, b == std::string::npos ? std::string::npos : b - a));
      m.indices.push_back(static_cast<int32_t>(line - 1));
      m.where.push_back(where);
    }
  }
  if (m.names.empty())
    fail(ErrorKind::data, path, "",
         "empty label map: expected {{\"class\": index, ...}} or one class name per line");
  check_unique(m);
  return m;
}

int64_t choose_batch(int64_t requested, int64_t activation_elems_per_sample, int64_t samples) {
  // 64 MiB for the largest activation of a batch: the engine holds a few
  // tensors of that size at once (a layer's input and output, a residual).
  constexpr int64_t kActivationBytes = int64_t{64} << 20, kMaxBatch = 256;
  int64_t batch = requested;
  if (batch <= 0) {
    const int64_t per_sample = std::max<int64_t>(1, activation_elems_per_sample) * 4;
    batch = std::clamp<int64_t>(kActivationBytes / per_sample, 1, kMaxBatch);
    return std::max<int64_t>(1, std::min(batch, samples));
  }
  const int64_t requested_batch = batch;
  batch = std::max<int64_t>(1, std::min(batch, samples));
  // A requested batch is bounded by what it implies: 1 GiB for the largest
  // activation (the engine holds a few of that size), so that --batch 65536
  // is this message rather than an allocation of gigabytes.
  constexpr int64_t kMaxActivationBytes = int64_t{1} << 30;
  const int64_t per_sample_bytes = std::max<int64_t>(0, activation_elems_per_sample) * 4;
  if (per_sample_bytes > 0 && per_sample_bytes > kMaxActivationBytes / batch) {
    const int64_t fits = kMaxActivationBytes / per_sample_bytes;
    fail(ErrorKind::usage, "", "--batch",
         "{} runs {} samples at once, which need {:.1f} GiB for the model's largest activation ({} bytes a "
         "sample), above the bound of 1 GiB; {}",
         requested_batch, batch,
         static_cast<double>(per_sample_bytes) * static_cast<double>(batch) / double(int64_t{1} << 30),
         per_sample_bytes,
         fits > 0 ? fmt::format("the largest batch that fits is {}", fits)
                  : std::string("not even one sample fits"));
  }
  return batch;
}

}  // namespace haq::data
