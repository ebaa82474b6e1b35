// NPY files (numpy.save): "\x93NUMPY", version, header length, then a Python
// dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (N, ...), }
// padded with spaces, then the raw C-order elements.

#include <cstdio>
#include <cstring>
#include <fstream>

#include "data_internal.h"
#include "haq/core/error.h"

namespace haq::data::detail {

namespace fs = std::filesystem;

namespace {

/// A parsed .npy header.
struct NpyHeader {
  char kind = 0;       ///< 'f', 'i', 'u', 'b', ...
  int item_bytes = 0;  ///< bytes per element
  std::string descr;   ///< as written, for messages
  std::vector<uint64_t> shape;
  uint64_t data_offset = 0;  ///< where the elements start
  uint64_t count = 1;        ///< product of the shape
};

std::string shape_text(const std::vector<uint64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

/// Finds the value text after key `name` in the dict literal; "" if absent.
size_t find_key(const std::string& h, const char* name) {
  for (const char* quote : {"'", "\""}) {
    std::string key = std::string(quote) + name + quote;
    size_t at = h.find(key);
    if (at == std::string::npos) continue;
    at = h.find(':', at + key.size());
    if (at == std::string::npos) return std::string::npos;
    at++;
    while (at < h.size() && h[at] == ' ') at++;
    return at;
  }
  return std::string::npos;
}

NpyHeader read_npy_header(std::ifstream& in, const std::string& file, uint64_t file_size) {
  char pre[10];
  in.read(pre, 10);
  if (in.gcount() < 10 || std::memcmp(pre, "\x93NUMPY", 6) != 0)
    fail(ErrorKind::data, file, "header", "not a .npy file (no \\x93NUMPY magic)");
  const int major = static_cast<uint8_t>(pre[6]);
  uint64_t header_len = 0, preamble = 10;
  if (major == 1) {
    header_len = static_cast<uint8_t>(pre[8]) | (uint64_t{static_cast<uint8_t>(pre[9])} << 8);
  } else if (major == 2 || major == 3) {
    char more[2];
    in.read(more, 2);
    if (in.gcount() < 2) fail(ErrorKind::data, file, "header", "truncated in the header length");
    preamble = 12;
    header_len = static_cast<uint8_t>(pre[8]) | (uint64_t{static_cast<uint8_t>(pre[9])} << 8) |
                 (uint64_t{static_cast<uint8_t>(more[0])} << 16) |
                 (uint64_t{static_cast<uint8_t>(more[1])} << 24);
  } else {
    fail(ErrorKind::data, file, "header",
         "unsupported .npy format version {}.{} (expected 1, 2 or 3)", major,
         static_cast<uint8_t>(pre[7]));
  }
  if (header_len > file_size - preamble)
    fail(ErrorKind::data, file, "header", "truncated: header of {} bytes, file has {} bytes",
         header_len, file_size);
  std::string h(header_len, '\0');
  in.read(h.data(), static_cast<std::streamsize>(header_len));
  if (static_cast<uint64_t>(in.gcount()) != header_len)
    fail(ErrorKind::data, file, "header", "truncated inside the header");

  NpyHeader out;
  out.data_offset = preamble + header_len;
  size_t at = find_key(h, "descr");
  if (at == std::string::npos || at >= h.size() || (h[at] != '\'' && h[at] != '"'))
    fail(ErrorKind::data, file, "header", "corrupt header: no 'descr' string in {}", h);
  size_t end = h.find(h[at], at + 1);
  if (end == std::string::npos) fail(ErrorKind::data, file, "header", "corrupt header: {}", h);
  out.descr = h.substr(at + 1, end - at - 1);
  const std::string& ds = out.descr;
  if (ds.size() < 3 || std::strchr("<>|=", ds[0]) == nullptr)
    fail(ErrorKind::data, file, "header", "unsupported dtype '{}' (structured or unknown)", ds);
  out.kind = ds[1];
  try {
    size_t used = 0;
    out.item_bytes = std::stoi(ds.substr(2), &used);
    if (used != ds.size() - 2) throw std::invalid_argument("suffix");
  } catch (const std::exception&) {
    fail(ErrorKind::data, file, "header", "unsupported dtype '{}'", ds);
  }
  if (ds[0] == '>' && out.item_bytes > 1)
    fail(ErrorKind::data, file, "header",
         "big-endian dtype '{}' not supported; save with arr.astype(arr.dtype.newbyteorder('<'))",
         ds);

  at = find_key(h, "fortran_order");
  if (at == std::string::npos)
    fail(ErrorKind::data, file, "header", "corrupt header: no 'fortran_order' in {}", h);
  if (h.compare(at, 4, "True") == 0)
    fail(ErrorKind::data, file, "header",
         "fortran_order is True; save a C-order array (np.ascontiguousarray)");
  if (h.compare(at, 5, "False") != 0)
    fail(ErrorKind::data, file, "header", "corrupt header: bad 'fortran_order' in {}", h);

  at = find_key(h, "shape");
  if (at == std::string::npos || at >= h.size() || h[at] != '(')
    fail(ErrorKind::data, file, "header", "corrupt header: no 'shape' tuple in {}", h);
  end = h.find(')', at);
  if (end == std::string::npos) fail(ErrorKind::data, file, "header", "corrupt header: {}", h);
  std::string tuple = h.substr(at + 1, end - at - 1);
  size_t pos = 0;
  while (pos < tuple.size()) {
    while (pos < tuple.size() && (tuple[pos] == ' ' || tuple[pos] == ',')) pos++;
    if (pos >= tuple.size()) break;
    size_t digits = pos;
    while (digits < tuple.size() && tuple[digits] >= '0' && tuple[digits] <= '9') digits++;
    if (digits == pos || digits - pos > 18)
      fail(ErrorKind::data, file, "header", "corrupt header: bad shape ({})", tuple);
    out.shape.push_back(std::stoull(tuple.substr(pos, digits - pos)));
    pos = digits;
  }
  bool overflow = false;
  for (uint64_t d : out.shape) overflow |= !checked_mul(out.count, d, &out.count);
  uint64_t bytes = 0;
  overflow |= !checked_mul(out.count, static_cast<uint64_t>(out.item_bytes), &bytes);
  if (overflow || out.count > kMaxTotalElems)
    fail(ErrorKind::data, file, "header",
         "shape {} is too large to be a real dataset: corrupt header", shape_text(out.shape));
  const uint64_t available = file_size - out.data_offset;
  if (bytes != available) {
    uint64_t per_item = out.shape.empty() || out.shape[0] == 0 ? 0 : bytes / out.shape[0];
    if (bytes > available)
      fail(ErrorKind::data, file,
           per_item ? fmt::format("sample {}", available / per_item) : std::string("data"),
           "truncated: shape {} of {} needs {} bytes, the file has {} after the header",
           shape_text(out.shape), ds, bytes, available);
    fail(ErrorKind::data, file, "end", "{} bytes after the data of shape {} of {}: corrupt header",
         available - bytes, shape_text(out.shape), ds);
  }
  return out;
}

void read_exact(std::ifstream& in, void* out, uint64_t bytes, const std::string& file) {
  in.read(static_cast<char*>(out), static_cast<std::streamsize>(bytes));
  if (static_cast<uint64_t>(in.gcount()) != bytes)
    fail(ErrorKind::io, file, "data", "read failed after {} of {} bytes", in.gcount(), bytes);
}

std::ifstream open_npy(const fs::path& path, uint64_t* size, const char* what) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    fail(ErrorKind::io, path.string(), "", "no such file (expected the .npy {} file)", what);
  *size = fs::file_size(path, ec);
  if (ec) fail(ErrorKind::io, path.string(), "", "cannot read its size: {}", ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::io, path.string(), "", "cannot open: {}", std::strerror(errno));
  return in;
}

}  // namespace

Dataset load_npy(const fs::path& images, const fs::path& labels, const DataSpec& spec) {
  const std::string file = images.string();
  uint64_t size = 0;
  std::ifstream in = open_npy(images, &size, "images");
  NpyHeader h = read_npy_header(in, file, size);
  const bool is_f32 = h.kind == 'f' && h.item_bytes == 4;
  const bool is_u8 = h.kind == 'u' && h.item_bytes == 1;
  if (!is_f32 && !is_u8)
    fail(ErrorKind::data, file, "header",
         "bad dtype '{}' for images: expected float32 ('<f4') or uint8 ('|u1'); convert with "
         "x.astype(np.float32)",
         h.descr);
  // Layout: N x D (flat), N x H x W (one channel), N x C x H x W, or
  // N x H x W x C when the last dim looks like channels and dim 1 does not.
  const auto& s = h.shape;
  uint64_t n = s.empty() ? 0 : s[0], c = 1, hh = 1, ww = 1;
  bool channels_last = false;
  if (s.size() == 2) {
    ww = s[1];
  } else if (s.size() == 3) {
    hh = s[1], ww = s[2];
  } else if (s.size() == 4) {
    auto is_ch = [](uint64_t v) { return v == 1 || v == 3; };
    channels_last = is_ch(s[3]) && !is_ch(s[1]);
    if (channels_last)
      hh = s[1], ww = s[2], c = s[3];
    else
      c = s[1], hh = s[2], ww = s[3];
  } else {
    fail(ErrorKind::data, file, "header",
         "images have shape {}; expected N x D, N x H x W, N x C x H x W or N x H x W x C",
         shape_text(s));
  }
  if (n == 0 || c * hh * ww == 0)
    fail(ErrorKind::data, file, "header", "images have shape {}: no samples", shape_text(s));
  if (!(spec.preprocess.scale > 0.f))
    fail(ErrorKind::usage, "", "scale", "must be positive, got {}", spec.preprocess.scale);

  Dataset d;
  d.source = file;
  d.channels = static_cast<int64_t>(c);
  d.height = static_cast<int64_t>(hh);
  d.width = static_cast<int64_t>(ww);
  std::vector<float> values(h.count);
  if (is_f32) {
    read_exact(in, values.data(), h.count * 4, file);
  } else {
    std::vector<uint8_t> raw(h.count);
    read_exact(in, raw.data(), h.count, file);
    float lut[256];
    for (int v = 0; v < 256; ++v) lut[v] = static_cast<float>(v) / spec.preprocess.scale;
    for (uint64_t i = 0; i < h.count; ++i) values[i] = lut[raw[i]];
  }
  if (channels_last) {
    d.images.resize(h.count);
    const uint64_t plane = hh * ww, sample = plane * c;
    for (uint64_t i = 0; i < n; ++i) {
      const float* src = values.data() + i * sample;
      float* dst = d.images.data() + i * sample;
      for (uint64_t p = 0; p < plane; ++p)
        for (uint64_t ch = 0; ch < c; ++ch) dst[ch * plane + p] = src[p * c + ch];
    }
  } else {
    d.images = std::move(values);
  }

  if (labels.empty()) {
    d.note = fmt::format("{}: no labels; only label-free metrics (fidelity) apply", file);
    finish_labels(d, spec, file);
    return d;
  }
  const std::string lfile = labels.string();
  std::ifstream lin = open_npy(labels, &size, "labels");
  NpyHeader lh = read_npy_header(lin, lfile, size);
  if ((lh.kind != 'i' && lh.kind != 'u') ||
      !(lh.item_bytes == 1 || lh.item_bytes == 2 || lh.item_bytes == 4 || lh.item_bytes == 8))
    fail(ErrorKind::data, lfile, "header",
         "bad dtype '{}' for labels: expected int32 ('<i4') or int64 ('<i8')", lh.descr);
  if (!(lh.shape.size() == 1 || (lh.shape.size() == 2 && lh.shape[1] == 1)))
    fail(ErrorKind::data, lfile, "header", "labels have shape {}; expected (N,)",
         shape_text(lh.shape));
  if (lh.shape[0] != n)
    fail(ErrorKind::data, lfile, "", "count mismatch: {} labels, but {} holds {} images",
         lh.shape[0], file, n);
  std::vector<uint8_t> raw(lh.count * static_cast<uint64_t>(lh.item_bytes));
  read_exact(lin, raw.data(), raw.size(), lfile);
  d.labels.resize(n);
  for (uint64_t i = 0; i < n; ++i) {
    const uint8_t* p = raw.data() + i * static_cast<uint64_t>(lh.item_bytes);
    uint64_t u = 0;
    for (int b = 0; b < lh.item_bytes; ++b) u |= uint64_t{p[b]} << (8 * b);
    int64_t v = 0;
    if (lh.kind == 'u' || lh.item_bytes == 8) {
      v = static_cast<int64_t>(u);
    } else {  // sign-extend
      const int bits = 8 * lh.item_bytes;
      v = static_cast<int64_t>(u << (64 - bits)) >> (64 - bits);
    }
    if ((lh.kind == 'u' && lh.item_bytes == 8 && static_cast<int64_t>(u) < 0) || v < 0 ||
        v > INT32_MAX)
      fail(ErrorKind::data, lfile, fmt::format("sample {}", i),
           "label {} out of range (negative or too large)",
           lh.kind == 'u' ? fmt::format("{}", u) : fmt::format("{}", v));
    d.labels[i] = static_cast<int32_t>(v);
  }
  finish_labels(d, spec, lfile);
  return d;
}

}  // namespace haq::data::detail
