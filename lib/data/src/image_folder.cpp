// Image folders: one subfolder per class (sorted names give the class
// indices), PNG/JPEG files inside, decoded and preprocessed to one size.

#include <algorithm>
#include <map>

#include "data_internal.h"
#include "haq/core/error.h"

namespace haq::data::detail {

namespace fs = std::filesystem;

namespace {

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

std::vector<fs::path> sorted_entries(const fs::path& dir, bool folders) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.filename().string().starts_with(".")) continue;
    std::error_code ec2;
    if (folders ? fs::is_directory(p, ec2) : (fs::is_regular_file(p, ec2) && is_image_file(p)))
      out.push_back(p);
  }
  if (ec) fail(ErrorKind::io, dir.string(), "", "cannot list the folder: {}", ec.message());
  // Byte-wise order of names: the same on every machine and file system.
  std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) {
    return a.filename().string() < b.filename().string();
  });
  return out;
}

std::string shape_text(int64_t c, int64_t h, int64_t w) { return fmt::format("{}x{}x{}", c, h, w); }

}  // namespace

std::string size_hint(const DataSpec& spec) {
  const Preprocess& pre = spec.preprocess;
  const ModelInput m = model_input_of(spec.model_input);
  if (m.height > 0 && m.height == m.width) {
    // The model's own size: resize the shorter side to it (or keep the
    // given resize if that is at least as large), then crop the centre.
    const int64_t s = m.height, r = pre.resize >= s ? pre.resize : s;
    return fmt::format("the model takes {}x{}: add --preprocess resize={},crop={}{}", s, s, r, s,
                       s == 224 ? " (or imagenet: resize=256,crop=224 and ImageNet's mean/std)" : "");
  }
  if (m.height > 0 && m.width > 0)
    return fmt::format("the model takes {}x{}: resize and crop to that size beforehand, or give "
                       "--preprocess resize=S,crop=S for a square crop", m.height, m.width);
  return "set resize and crop, e.g. --preprocess resize=256,crop=224";
}

namespace {

}  // namespace

Dataset load_image_folder(const fs::path& dir, const DataSpec& spec,
                          const std::vector<std::string>& class_names, const LabelMap* labels) {
  const Preprocess& pre = spec.preprocess;
  // Channels follow the user, else the model's input, else RGB.
  const int64_t model_channels = model_input_of(spec.model_input).channels;
  const int64_t want_channels = pre.channels > 0 ? pre.channels : model_channels == 1 ? 1 : 3;
  Dataset d;
  d.source = dir.string();
  std::vector<fs::path> class_dirs = sorted_entries(dir, true);
  if (class_dirs.empty())
    fail(ErrorKind::data, dir.string(), "",
         "no class subfolders: an image folder holds one subfolder per class with .png/.jpg "
         "files (or train/ and test/ subfolders laid out so)");
  std::map<std::string, int32_t> index_of;
  if (labels) {
    int32_t top = -1;
    for (size_t i = 0; i < labels->names.size(); ++i) {
      index_of[labels->names[i]] = labels->indices[i];
      top = std::max(top, labels->indices[i]);
    }
    d.class_names.assign(static_cast<size_t>(top + 1), std::string());
    for (size_t i = 0; i < labels->names.size(); ++i)
      d.class_names[static_cast<size_t>(labels->indices[i])] = labels->names[i];
    for (const fs::path& p : class_dirs)
      if (!index_of.count(p.filename().string()))
        fail(ErrorKind::data, p.string(), "",
             "class folder '{}' is not in the label map {} ({} classes there); add it, or "
             "move the folder away",
             p.filename().string(), labels->file, labels->names.size());
  } else if (class_names.empty()) {
    for (const fs::path& p : class_dirs) {
      index_of[p.filename().string()] = static_cast<int32_t>(d.class_names.size());
      d.class_names.push_back(p.filename().string());
    }
  } else {
    d.class_names = class_names;
    for (size_t i = 0; i < class_names.size(); ++i)
      index_of[class_names[i]] = static_cast<int32_t>(i);
    for (const fs::path& p : class_dirs)
      if (!index_of.count(p.filename().string()))
        fail(ErrorKind::data, p.string(), "",
             "class folder '{}' does not exist in the train split (classes there: {})",
             p.filename().string(), fmt::join(class_names, ", "));
  }

  std::string first_file;
  for (const fs::path& class_dir : class_dirs) {
    const int32_t label = index_of.at(class_dir.filename().string());
    for (const fs::path& path : sorted_entries(class_dir, false)) {
      const std::string file = path.string();
      const int64_t sample = static_cast<int64_t>(d.labels.size());
      try {
        const Image8 src = decode_image(path);
        Planar img;
        img.height = src.height;
        img.width = src.width;
        img.channels = want_channels;
        const int64_t plane = src.height * src.width;
        const float scale = pre.scale;
        const uint8_t* px = src.pixels.data();
        img.values.resize(static_cast<size_t>(want_channels * plane));
        if (src.channels == 1) {
          // Gray: as is, or replicated to R = G = B (PIL's convert("RGB")).
          for (int64_t c = 0; c < want_channels; ++c)
            for (int64_t i = 0; i < plane; ++i) img.values[c * plane + i] = px[i] / scale;
        } else if (want_channels == 1) {
          // ITU-R BT.601 luma, the weights of PIL's convert("L"); a gray
          // pixel (R = G = B) stays exactly its value, as in PIL (the float
          // weights' sum is not exactly 1).
          for (int64_t i = 0; i < plane; ++i) {
            const uint8_t r = px[3 * i], g = px[3 * i + 1], b = px[3 * i + 2];
            img.values[i] =
                (r == g && g == b ? float(r) : 0.299f * r + 0.587f * g + 0.114f * b) / scale;
          }
        } else {
          const bool bgr = pre.channel_order == "bgr";
          for (int64_t i = 0; i < plane; ++i)
            for (int64_t c = 0; c < 3; ++c)
              img.values[(bgr ? 2 - c : c) * plane + i] = px[3 * i + c] / scale;
        }
        if (pre.resize > 0) img = resize_shorter_side(img, pre.resize);
        if (pre.crop > 0) {
          if (pre.crop > img.height || pre.crop > img.width)
            fail(ErrorKind::data, file, "",
                 "image is {}x{} (after resize), smaller than the crop {}x{}", img.height,
                 img.width, pre.crop, pre.crop);
          img = center_crop(img, pre.crop);
        }
        if (first_file.empty()) {
          first_file = file;
          d.channels = img.channels;
          d.height = img.height;
          d.width = img.width;
        } else if (img.height != d.height || img.width != d.width) {
          fail(ErrorKind::data, file, "",
               "image is {} after preprocessing, but {} is {}; all images must end the same "
               "size: {}",
               shape_text(img.channels, img.height, img.width), first_file,
               shape_text(d.channels, d.height, d.width), size_hint(spec));
        }
        uint64_t total = 0;
        if (!checked_mul(static_cast<uint64_t>(sample + 1),
                         static_cast<uint64_t>(img.values.size()), &total) ||
            total > kMaxTotalElems)
          fail(ErrorKind::data, file, "", "too many images to hold in memory");
        d.images.insert(d.images.end(), img.values.begin(), img.values.end());
        d.labels.push_back(label);
      } catch (const Error& e) {
        throw e.with_context(fmt::format("sample {}", sample));
      }
    }
  }
  if (d.labels.empty())
    fail(ErrorKind::data, dir.string(), "", "no .png/.jpg/.jpeg images in the class subfolders");
  d.num_classes = static_cast<int64_t>(d.class_names.size());
  return d;
}

}  // namespace haq::data::detail
