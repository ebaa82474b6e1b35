// load_dataset: what --data names (a keyword, a folder, .npy files), and the
// shared steps: labels, mean/std, sampling, and the model's input layout.

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include "data_internal.h"
#include "haq/core/error.h"
#include "haq/core/rng.h"

namespace haq::data {

namespace fs = std::filesystem;
using namespace detail;

namespace detail {

void finish_labels(Dataset& d, const DataSpec& spec, const std::string& file) {
  if (spec.num_classes < 0)
    fail(ErrorKind::usage, "", "num_classes", "must be >= 0, got {}", spec.num_classes);
  int64_t max_label = -1;
  for (size_t i = 0; i < d.labels.size(); ++i) {
    const int64_t label = d.labels[i];
    if (label < 0 || (spec.num_classes > 0 && label >= spec.num_classes))
      fail(ErrorKind::data, file, fmt::format("sample {}", i),
           "label {} out of range 0..{} (num_classes {})", label, spec.num_classes - 1,
           spec.num_classes);
    max_label = std::max(max_label, label);
  }
  if (!d.class_names.empty() && spec.num_classes > 0 &&
      static_cast<int64_t>(d.class_names.size()) > spec.num_classes)
    fail(ErrorKind::data, file, "", "{} class folders, but num_classes is {}", d.class_names.size(),
         spec.num_classes);
  if (spec.num_classes > 0)
    d.num_classes = spec.num_classes;
  else if (!d.class_names.empty())
    d.num_classes = static_cast<int64_t>(d.class_names.size());
  else
    d.num_classes = max_label + 1;
}

void apply_mean_std(Dataset& d, const Preprocess& p) {
  if (p.mean.empty() && p.std.empty()) return;
  auto per_channel = [&](const std::vector<float>& v, const char* name, float fallback) {
    if (v.empty()) return std::vector<float>(static_cast<size_t>(d.channels), fallback);
    if (v.size() == 1) return std::vector<float>(static_cast<size_t>(d.channels), v[0]);
    if (static_cast<int64_t>(v.size()) != d.channels)
      fail(ErrorKind::usage, d.source, "preprocess",
           "{} has {} values, but the images have {} channel(s): give 1 or {}", name, v.size(),
           d.channels, d.channels);
    return v;
  };
  const std::vector<float> mean = per_channel(p.mean, "mean", 0.f);
  const std::vector<float> sd = per_channel(p.std, "std", 1.f);
  const int64_t plane = d.height * d.width, n = d.size();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < d.channels; ++c) {
      float* x = d.images.data() + (i * d.channels + c) * plane;
      const float m = mean[c], s = sd[c];
      for (int64_t k = 0; k < plane; ++k) x[k] = (x[k] - m) / s;
    }
}

}  // namespace detail

namespace {

void validate_preprocess(const Preprocess& p) {
  if (p.resize < 0)
    fail(ErrorKind::usage, "", "preprocess", "resize must be >= 0, got {}", p.resize);
  if (p.crop < 0) fail(ErrorKind::usage, "", "preprocess", "crop must be >= 0, got {}", p.crop);
  if (p.channels != 0 && p.channels != 1 && p.channels != 3)
    fail(ErrorKind::usage, "", "preprocess", "channels must be 0 (auto), 1 or 3, got {}",
         p.channels);
  if (!(p.scale > 0.f) || !std::isfinite(p.scale))
    fail(ErrorKind::usage, "", "preprocess", "scale must be a positive number, got {}", p.scale);
  if (p.channel_order != "rgb" && p.channel_order != "bgr")
    fail(ErrorKind::usage, "", "preprocess", "order must be rgb or bgr, got '{}'", p.channel_order);
  for (float s : p.std)
    if (!(s > 0.f))
      fail(ErrorKind::usage, "", "preprocess", "std values must be positive, got {}", s);
}

/// IDX and NPY samples keep their stored size: image-only options are errors
/// rather than silently ignored.
void reject_image_options(const DataSpec& spec, const std::string& what) {
  const Preprocess& p = spec.preprocess;
  if (p.resize > 0 || p.crop > 0 || p.channels > 0 || p.channel_order != "rgb")
    fail(ErrorKind::usage, "", "preprocess",
         "resize, crop, gray, rgb and order apply to image folders only, not to {} (scale, mean "
         "and std do)",
         what);
  if (!spec.labels.empty())
    fail(ErrorKind::usage, spec.labels, "--labels",
         "a label map names class folders: it applies to image folders only, not to {}", what);
}

const char* split_name(Split s) { return s == Split::train ? "train" : "test"; }

Dataset load_idx_dir(const fs::path& dir, const DataSpec& spec, Split split,
                     const std::string& name) {
  reject_image_options(spec, "IDX data");
  IdxFiles f = find_idx_files(dir);
  const bool train = split == Split::train;
  fs::path images = train ? f.train_images : f.test_images;
  fs::path labels = train ? f.train_labels : f.test_labels;
  const char* prefix = train ? "train" : "t10k";
  if (images.empty() || labels.empty())
    fail(ErrorKind::io, dir.string(), "",
         "no {} split: expected {}-images-idx3-ubyte and {}-labels-idx1-ubyte (optionally .gz{}) "
         "in this folder; missing the {} file",
         split_name(split), prefix, prefix, train ? "" : "; test- prefix also accepted",
         images.empty() ? "images" : "labels");
  Dataset d = load_idx(images, labels, spec);
  d.source = name.empty() ? dir.string() : fmt::format("{} ({})", name, dir.string());
  return d;
}

bool has_idx_files(const fs::path& dir) {
  IdxFiles f = find_idx_files(dir);
  return !f.train_images.empty() || !f.test_images.empty();
}

std::string trim(std::string s) {
  while (!s.empty() && s.front() == ' ') s.erase(s.begin());
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

Dataset load_npy_spec(const std::string& text, const DataSpec& spec, Split split) {
  reject_image_options(spec, ".npy data");
  // "X.npy[,Y.npy][;X_TEST.npy[,Y_TEST.npy]]": the first pair is the train
  // split, the second the test split; one pair serves both.
  std::vector<std::string> pairs;
  size_t semi = text.find(';');
  pairs.push_back(trim(text.substr(0, semi)));
  if (semi != std::string::npos) pairs.push_back(trim(text.substr(semi + 1)));
  if (pairs.size() == 2 && pairs[1].find(';') != std::string::npos)
    fail(ErrorKind::usage, "", "--data", "'{}': at most two .npy pairs (train;test)", text);
  const bool both = pairs.size() == 1;
  const std::string& pair = pairs[split == Split::train || both ? 0 : 1];
  size_t comma = pair.find(',');
  std::string images = trim(pair.substr(0, comma));
  std::string labels = comma == std::string::npos ? std::string() : trim(pair.substr(comma + 1));
  if (images.empty() || labels.find(',') != std::string::npos)
    fail(ErrorKind::usage, "", "--data",
         "'{}': expected IMAGES.npy,LABELS.npy (or TRAIN_X.npy,TRAIN_Y.npy;TEST_X.npy,TEST_Y.npy)",
         text);
  Dataset d = load_npy(images, labels, spec);
  if (both) {
    std::string note = fmt::format(
        "{}: one .npy pair serves both the train (calibration) and test splits; give "
        "TRAIN_X.npy,TRAIN_Y.npy;TEST_X.npy,TEST_Y.npy to separate them",
        images);
    d.note = d.note.empty() ? note : d.note + "; " + note;
  }
  return d;
}

Dataset load_image_dir(const fs::path& dir, const DataSpec& spec, Split split) {
  std::error_code ec;
  LabelMap map;
  const LabelMap* labels = nullptr;
  if (!spec.labels.empty()) {
    map = read_label_map(spec.labels, spec.num_classes);
    labels = &map;
  }
  const fs::path train = dir / "train";
  fs::path test = dir / "test";
  if (!fs::is_directory(test, ec)) test = dir / "val";
  if (fs::is_directory(train, ec) && fs::is_directory(test, ec)) {
    if (split == Split::train) return load_image_folder(train, spec, {}, labels);
    // The test split uses the train split's class indices, so that a class
    // missing from test/ does not shift the others.
    std::vector<std::string> names;
    for (fs::directory_iterator it(train, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code ec2;
      if (fs::is_directory(it->path(), ec2) && !it->path().filename().string().starts_with("."))
        names.push_back(it->path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return load_image_folder(test, spec, names, labels);
  }
  Dataset d = load_image_folder(dir, spec, {}, labels);
  d.note = fmt::format(
      "{}: no train/ and test/ subfolders, so the same images serve both the train "
      "(calibration) and test splits",
      dir.string());
  return d;
}

fs::path env_dir(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? fs::path(v) : fs::path();
}

}  // namespace

Dataset load_dataset(const DataSpec& spec, Split split) {
  const std::string& text = spec.data;
  if (text.empty())
    fail(ErrorKind::usage, "", "--data",
         "no dataset given: fashion-mnist, mnist, an IDX folder, IMAGES.npy,LABELS.npy or an "
         "image folder");
  validate_preprocess(spec.preprocess);
  Dataset d;
  std::error_code ec;
  if (text == "fashion-mnist" || text == "mnist") {
    const bool fashion = text == "fashion-mnist";
    const char* env = fashion ? "HAQ_FASHION_MNIST_DIR" : "HAQ_MNIST_DIR";
    const fs::path system =
        fashion ? "/usr/share/datasets/fashion-mnist" : "/usr/share/datasets/mnist";
    const fs::path from_env = env_dir(env);
    std::vector<std::string> tried;
    for (const fs::path& dir : {from_env, system}) {
      if (dir.empty()) continue;
      tried.push_back(dir.string());
      if (fs::is_directory(dir, ec) && has_idx_files(dir)) {
        d = load_idx_dir(dir, spec, split, text);
        break;
      }
    }
    if (d.images.empty())
      fail(ErrorKind::io, text, "",
           "IDX files not found; looked in {}{}. Set {} to a folder holding "
           "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
           "t10k-labels-idx1-ubyte (optionally .gz), or pass that folder as --data{}",
           from_env.empty() ? fmt::format("${} (not set) and ", env) : "",
           fmt::join(tried, " and "), env,
           fashion ? " (Debian: apt-get install dataset-fashion-mnist)" : "");
  } else if (text.find(',') != std::string::npos || text.find(';') != std::string::npos ||
             text.ends_with(".npy")) {
    d = load_npy_spec(text, spec, split);
  } else {
    const fs::path path(text);
    if (!fs::exists(path, ec))
      fail(ErrorKind::io, text, "",
           "no such file or folder; --data takes fashion-mnist, mnist, a folder of IDX files, "
           "IMAGES.npy,LABELS.npy or an image folder (one subfolder per class)");
    if (!fs::is_directory(path, ec))
      fail(ErrorKind::usage, text, "",
           "is a file; --data takes a folder, IMAGES.npy,LABELS.npy or a dataset name");
    if (has_idx_files(path)) {
      d = load_idx_dir(path, spec, split, "");
    } else if (fs::is_regular_file(path / "images.npy", ec)) {
      const fs::path labels = path / "labels.npy";
      DataSpec pair = spec;
      pair.data = (path / "images.npy").string() +
                  (fs::is_regular_file(labels, ec) ? "," + labels.string() : std::string());
      d = load_npy_spec(pair.data, pair, split);
    } else {
      d = load_image_dir(path, spec, split);
      finish_labels(d, spec, d.source);
    }
  }
  apply_mean_std(d, spec.preprocess);
  return d;
}

ModelInput model_input_of(const std::vector<int64_t>& shape) {
  ModelInput m;
  if (shape.size() != 4) return m;
  auto known = [](int64_t v) { return v > 0 ? v : 0; };
  if (shape[1] == 1 || shape[1] == 3) {
    m.channels = shape[1];
    m.height = known(shape[2]);
    m.width = known(shape[3]);
  } else if (shape[3] == 1 || shape[3] == 3) {
    m.channels = shape[3];
    m.height = known(shape[1]);
    m.width = known(shape[2]);
  }
  return m;
}

bool splits_shared(const DataSpec& spec) {
  const std::string& text = spec.data;
  if (text.empty() || text == "fashion-mnist" || text == "mnist") return false;
  if (text.find(',') != std::string::npos || text.find(';') != std::string::npos ||
      text.ends_with(".npy"))
    return text.find(';') == std::string::npos;
  std::error_code ec;
  const fs::path path(text);
  if (!fs::is_directory(path, ec) || has_idx_files(path)) return false;
  if (fs::is_regular_file(path / "images.npy", ec)) return true;
  fs::path test = path / "test";
  if (!fs::is_directory(test, ec)) test = path / "val";
  return !(fs::is_directory(path / "train", ec) && fs::is_directory(test, ec));
}

std::vector<int64_t> sample_indices(const Dataset& d, int64_t count, uint64_t seed) {
  const int64_t n = d.size();
  std::vector<int64_t> out;
  if (count <= 0 || count >= n) {
    out.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out[i] = i;
    return out;
  }
  // Floyd's algorithm: `count` distinct values from [0, n), O(count) memory.
  // Bounded draws by rejection, not std::uniform_int_distribution, whose
  // output differs between standard libraries.
  std::mt19937_64 rng = make_rng(seed, "data.sample");
  auto below = [&](uint64_t bound) {
    const uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
    for (;;) {
      uint64_t r = rng();
      if (r >= threshold) return r % bound;
    }
  };
  std::set<int64_t> chosen;
  for (int64_t j = n - count; j < n; ++j) {
    int64_t t = static_cast<int64_t>(below(static_cast<uint64_t>(j) + 1));
    if (!chosen.insert(t).second) chosen.insert(j);
  }
  out.assign(chosen.begin(), chosen.end());
  return out;
}

void to_model_layout(const Dataset& d, const std::vector<int64_t>& indices,
                     const std::vector<int64_t>& input_shape, float* out) {
  const int64_t c = d.channels, h = d.height, w = d.width, elems = d.sample_elems();
  std::vector<int64_t> dims(input_shape.begin() + (input_shape.empty() ? 0 : 1), input_shape.end());
  auto fits = [&](std::vector<int64_t> want) {
    if (want.size() != dims.size()) return false;
    for (size_t i = 0; i < dims.size(); ++i)
      if (dims[i] > 0 && dims[i] != want[i]) return false;  // <= 0: a dynamic dim
    return true;
  };
  enum class Mode { copy, hwc, none } mode = Mode::none;
  if (input_shape.size() >= 2) {
    int64_t prod = 1;
    bool all_known = true;
    for (int64_t v : dims) all_known &= v > 0, prod *= std::max<int64_t>(v, 1);
    if (fits({c, h, w}) || fits({elems}) || (c == 1 && fits({h, w})))
      mode = Mode::copy;
    else if (fits({h, w, c}))
      mode = Mode::hwc;
    else if (c == 1 && h == 1 && all_known && prod == elems)
      mode = Mode::copy;  // flat data (N x D) is taken to be in the model's order
  }
  if (mode == Mode::none) {
    std::string shape;
    for (size_t i = 0; i < input_shape.size(); ++i)
      shape += (i ? " x " : "") + (input_shape[i] > 0 ? std::to_string(input_shape[i]) : "?");
    // An image folder can be brought to the model's size.
    std::string hint;
    const ModelInput m = model_input_of(input_shape);
    if (!d.class_names.empty() && m.height > 0 && m.height == m.width)
      hint = fmt::format("; resize and crop the images to the model's size: --preprocess "
                         "resize={},crop={}",
                         m.height, m.height);
    fail(ErrorKind::data, d.source, "",
         "the model's input is {}, but the samples are {}x{}x{} (C x H x W): expected N x {} x {} "
         "x {}, "
         "N x {} x {} x {} or N x {}{}",
         shape.empty() ? "a scalar" : shape, c, h, w, c, h, w, h, w, c, elems, hint);
  }
  const int64_t n = d.size(), plane = h * w;
  for (size_t k = 0; k < indices.size(); ++k) {
    const int64_t i = indices[k];
    HAQ_ASSERT(i >= 0 && i < n);
    const float* src = d.images.data() + i * elems;
    float* dst = out + static_cast<int64_t>(k) * elems;
    if (mode == Mode::copy) {
      std::copy(src, src + elems, dst);
    } else {
      for (int64_t p = 0; p < plane; ++p)
        for (int64_t ch = 0; ch < c; ++ch) dst[p * c + ch] = src[ch * plane + p];
    }
  }
}

std::string describe(const Dataset& d) {
  return fmt::format(
      "{}: {} samples, {}x{}x{}, {}", d.source, d.size(), d.channels, d.height, d.width,
      d.labels.empty() ? std::string("unlabeled") : fmt::format("{} classes", d.num_classes));
}

}  // namespace haq::data
