// IDX files (the MNIST format): a 4-byte magic (0, 0, element type, number of
// dimensions), big-endian uint32 dimensions, then the elements. Read through
// zlib's gz* interface, which reads gzipped and plain files alike.

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>

#include "data_internal.h"
#include "haq/core/error.h"

namespace haq::data::detail {

namespace fs = std::filesystem;

namespace {

/// Deflate cannot expand data by more than about 1032:1, so a gzip file of
/// S bytes cannot hold more than this many bytes: a header claiming more is
/// refused before anything is allocated.
constexpr uint64_t kMaxGzipRatio = 1032;

/// At most 1 GiB of elements in one IDX file (the largest MNIST-style file,
/// the 60,000 training images, is 47 MB): the images are held as floats, four
/// times that, and a 1 MB gzip bomb may claim a gigabyte.
constexpr uint64_t kMaxIdxBytes = uint64_t{1} << 30;

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzPtr = std::unique_ptr<gzFile_s, GzCloser>;

/// Reads up to `n` bytes; returns how many were read. Error(data) on a corrupt stream.
uint64_t gz_read(gzFile f, uint8_t* out, uint64_t n, const std::string& file) {
  uint64_t done = 0;
  while (done < n) {
    unsigned chunk = static_cast<unsigned>(std::min<uint64_t>(n - done, 1u << 24));
    int got = gzread(f, out + done, chunk);
    if (got < 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      fail(ErrorKind::data, file, fmt::format("byte {}", done), "corrupt gzip stream: {}",
           msg ? msg : "unknown zlib error");
    }
    if (got == 0) break;
    done += static_cast<uint64_t>(got);
  }
  return done;
}

std::string dims_text(const std::vector<uint64_t>& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? " x " : "") + std::to_string(dims[i]);
  return s;
}

}  // namespace

/// One IDX array of unsigned bytes.
struct IdxArray {
  std::vector<uint64_t> dims;
  std::vector<uint8_t> data;
};

/// Reads one IDX file. With `lut`, the elements are converted through it into
/// `floats` as they are read (out.data stays empty): no second copy of the
/// payload, and memory follows the data present, not the header's claim.
IdxArray read_idx(const fs::path& path, size_t expected_ndims, const char* what,
                  const std::array<float, 256>* lut = nullptr, std::vector<float>* floats = nullptr) {
  const std::string file = path.string();
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    fail(ErrorKind::io, file, "", "no such file (expected the IDX {} file)", what);
  const uint64_t file_size = fs::file_size(path, ec);
  if (ec) fail(ErrorKind::io, file, "", "cannot read its size: {}", ec.message());

  GzPtr gz(gzopen(file.c_str(), "rb"));
  if (!gz) fail(ErrorKind::io, file, "", "cannot open: {}", std::strerror(errno));
  gzbuffer(gz.get(), 1u << 20);

  std::array<uint8_t, 4> magic{};
  if (gz_read(gz.get(), magic.data(), 4, file) < 4)
    fail(ErrorKind::data, file, "header", "truncated: too short for an IDX header");
  const bool gzipped = gzdirect(gz.get()) == 0;
  const uint32_t magic_value = (uint32_t{magic[0]} << 24) | (uint32_t{magic[1]} << 16) |
                               (uint32_t{magic[2]} << 8) | magic[3];
  const uint32_t expected_magic = 0x0800u | static_cast<uint32_t>(expected_ndims);
  if (magic[0] != 0 || magic[1] != 0)
    fail(ErrorKind::data, file, "header",
         "bad magic number 0x{:08x}: not an IDX file (expected 0x{:08x} for {})", magic_value,
         expected_magic, what);
  if (magic[2] != 0x08)
    fail(ErrorKind::data, file, "header",
         "unsupported IDX element type 0x{:02x} (magic 0x{:08x}); expected 0x08, unsigned bytes",
         magic[2], magic_value);
  if (magic[3] != expected_ndims)
    fail(ErrorKind::data, file, "header",
         "bad magic number 0x{:08x}: {} dimensions, expected {} for {} (magic 0x{:08x})",
         magic_value, magic[3], expected_ndims, what, expected_magic);

  IdxArray out;
  std::vector<uint8_t> raw_dims(4 * expected_ndims);
  if (gz_read(gz.get(), raw_dims.data(), raw_dims.size(), file) < raw_dims.size())
    fail(ErrorKind::data, file, "header", "truncated: the header ends inside the dimensions");
  for (size_t i = 0; i < expected_ndims; ++i) {
    const uint8_t* b = &raw_dims[4 * i];
    out.dims.push_back((uint64_t{b[0]} << 24) | (uint64_t{b[1]} << 16) | (uint64_t{b[2]} << 8) |
                       b[3]);
  }
  const uint64_t header_bytes = 4 + 4 * expected_ndims;
  uint64_t payload = 1;
  bool overflow = false;
  for (uint64_t d : out.dims) {
    if (d == 0)
      fail(ErrorKind::data, file, "header", "header says {}: a dimension is 0",
           dims_text(out.dims));
    overflow |= !checked_mul(payload, d, &payload);
  }
  if (overflow || payload > std::min(kMaxTotalElems, kMaxIdxBytes))
    fail(ErrorKind::data, file, "header",
         "header says {} ({} bytes of data), too large: more than the 1 GiB an IDX file may hold",
         dims_text(out.dims), overflow ? std::string("more than 2^64") : std::to_string(payload));
  const uint64_t per_item = payload / out.dims[0];
  if (!gzipped) {
    if (file_size < header_bytes + payload)
      fail(ErrorKind::data, file, fmt::format("{} {}", what, (file_size - header_bytes) / per_item),
           "truncated: header says {} ({} bytes), file has {} bytes after the header "
           "({} complete {}s)",
           dims_text(out.dims), payload, file_size - header_bytes,
           (file_size - header_bytes) / per_item, what);
    if (file_size > header_bytes + payload)
      fail(ErrorKind::data, file, "end",
           "{} bytes after the last {} (header says {}): corrupt header or wrong file",
           file_size - header_bytes - payload, what, dims_text(out.dims));
  } else if (payload > kMaxGzipRatio * file_size) {
    fail(ErrorKind::data, file, "header",
         "header says {} ({} bytes), more than a gzip file of {} bytes can hold: corrupt header",
         dims_text(out.dims), payload, file_size);
  }

  // Read in chunks so that memory follows the data actually present, not the
  // header's claim (a gzip file's claim is only bounded loosely above).
  uint64_t done = 0;
  std::vector<uint8_t> buffer;
  if (floats && !gzipped) floats->reserve(payload);  // the file's size is checked against it
  while (done < payload) {
    uint64_t chunk = std::min<uint64_t>(payload - done, uint64_t{16} << 20);
    uint64_t got = 0;
    if (floats) {
      buffer.resize(chunk);
      got = gz_read(gz.get(), buffer.data(), chunk, file);
      floats->resize(done + got);
      float* dst = floats->data() + done;
      for (uint64_t i = 0; i < got; ++i) dst[i] = (*lut)[buffer[i]];
    } else {
      out.data.resize(done + chunk);
      got = gz_read(gz.get(), out.data.data() + done, chunk, file);
    }
    done += got;
    if (got < chunk) {
      fail(ErrorKind::data, file, fmt::format("{} {}", what, done / per_item),
           "truncated: header says {} ({} bytes), the data ends after {} bytes ({} complete {}s)",
           dims_text(out.dims), payload, done, done / per_item, what);
    }
  }
  uint8_t extra = 0;
  if (gzipped && gz_read(gz.get(), &extra, 1, file) != 0)
    fail(ErrorKind::data, file, "end",
         "data continues after the last {} (header says {}): corrupt header or wrong file", what,
         dims_text(out.dims));
  return out;
}

IdxFiles find_idx_files(const fs::path& dir) {
  IdxFiles out;
  auto find = [&](std::initializer_list<const char*> prefixes, const char* kind) {
    for (const char* prefix : prefixes)
      for (const char* sep : {"-", "."})
        for (const char* ext : {"", ".gz"}) {
          fs::path p = dir / (std::string(prefix) + "-" + kind + sep +
                              (kind[0] == 'i' ? "idx3" : "idx1") + "-ubyte" + ext);
          std::error_code ec;
          if (fs::is_regular_file(p, ec)) return p;
        }
    return fs::path();
  };
  out.train_images = find({"train"}, "images");
  out.train_labels = find({"train"}, "labels");
  out.test_images = find({"t10k", "test"}, "images");
  out.test_labels = find({"t10k", "test"}, "labels");
  return out;
}

Dataset load_idx(const fs::path& images, const fs::path& labels, const DataSpec& spec) {
  if (!(spec.preprocess.scale > 0.f))
    fail(ErrorKind::usage, "", "scale", "must be positive, got {}", spec.preprocess.scale);
  std::array<float, 256> lut;
  for (int v = 0; v < 256; ++v) lut[v] = static_cast<float>(v) / spec.preprocess.scale;
  Dataset d;
  IdxArray img = read_idx(images, 3, "image", &lut, &d.images);
  IdxArray lab = read_idx(labels, 1, "label");
  if (img.dims[0] != lab.dims[0])
    fail(ErrorKind::data, labels.string(), "", "count mismatch: {} labels, but {} holds {} images",
         lab.dims[0], images.string(), img.dims[0]);

  d.source = images.parent_path().string();
  d.channels = 1;
  d.height = static_cast<int64_t>(img.dims[1]);
  d.width = static_cast<int64_t>(img.dims[2]);
  d.labels.assign(lab.data.begin(), lab.data.end());
  finish_labels(d, spec, labels.string());
  return d;
}

}  // namespace haq::data::detail
