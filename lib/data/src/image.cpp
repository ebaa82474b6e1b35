// PNG (libpng's simplified API) and JPEG (libjpeg) decoding to 8-bit gray or RGB, and
// the geometric preprocessing: shorter-side resize and centre crop.

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstddef>
#include <cstdio>
#include <cstring>

// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "data_internal.h"
#include "haq/core/error.h"
#include "haq/core/files.h"

namespace haq::data::detail {

namespace fs = std::filesystem;

namespace {

/// Refuse images above this many pixels before allocating (a hostile header
/// can claim 65535 x 65535).
constexpr uint64_t kMaxPixels = uint64_t{1} << 27;

Image8 decode_png(const std::string& bytes, const std::string& file) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size()))
    fail(ErrorKind::data, file, "header", "corrupt PNG: {}", image.message);
  if (uint64_t{image.width} * image.height > kMaxPixels || image.width == 0 || image.height == 0) {
    png_image_free(&image);
    fail(ErrorKind::data, file, "header", "PNG of {} x {} pixels: refused (corrupt or too large)",
         image.width, image.height);
  }
  // Palette images count as colour (libpng expands them); gray stays one channel.
  const bool color = (image.format & PNG_FORMAT_FLAG_COLOR) != 0;
  // begin_read marks 16-bit files linear; read those as 16-bit linear, which
  // keeps the stored values (an 8-bit read would gamma-encode them as sRGB).
  const bool sixteen = (image.format & PNG_FORMAT_FLAG_LINEAR) != 0;
  const int64_t channels = color ? 3 : 1, stored = channels + 1;
  // With alpha, then dropped: the colour values as stored (what PIL's
  // convert("RGB") gives), not composited on some background.
  image.format = (color ? PNG_FORMAT_RGBA : PNG_FORMAT_GA) | (sixteen ? PNG_FORMAT_FLAG_LINEAR : 0);
  const uint64_t pixels = uint64_t{image.width} * image.height;
  Image8 out;
  out.height = image.height;
  out.width = image.width;
  out.channels = channels;
  out.pixels.resize(pixels * static_cast<uint64_t>(channels));
  auto finish = [&](void* buffer) {
    if (!png_image_finish_read(&image, nullptr, buffer, 0, nullptr)) {
      std::string msg = image.message;
      png_image_free(&image);
      fail(ErrorKind::data, file, "data", "corrupt or truncated PNG: {}", msg);
    }
  };
  if (!sixteen) {
    std::vector<uint8_t> buf(PNG_IMAGE_SIZE(image));
    finish(buf.data());
    for (uint64_t i = 0; i < pixels; ++i)
      for (int64_t c = 0; c < channels; ++c)
        out.pixels[i * channels + c] = buf[i * stored + c];
    return out;
  }
  // Linear 16-bit output comes premultiplied by alpha: divide it out, then
  // round to 8 bits (v * 255 / 65535, as 16-to-8-bit scaling does).
  std::vector<uint16_t> buf(PNG_IMAGE_SIZE(image) / 2);
  finish(buf.data());
  for (uint64_t i = 0; i < pixels; ++i) {
    const uint32_t alpha = buf[i * stored + channels];
    for (int64_t c = 0; c < channels; ++c) {
      uint32_t v = buf[i * stored + c];
      if (alpha < 65535) v = alpha ? std::min<uint32_t>(65535, (v * 65535u + alpha / 2) / alpha) : 0;
      out.pixels[i * channels + c] = static_cast<uint8_t>((v * 255u + 32767u) / 65535u);
    }
  }
  return out;
}

/// libjpeg reports fatal errors through error_exit, which must not return:
/// jump back to decode_jpeg_raw (no C++ objects live between the two).
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool unsupported = false;  ///< a valid file haq cannot decode (message says why)
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void jpeg_emit_message(j_common_ptr cinfo, int level) {
  // A truncated file only warns (and libjpeg fills the rest with grey): make it fatal.
  if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_error_exit(cinfo);
}

/// Decodes into `pixels` (allocated by the caller's vector via the callback);
/// returns false with `err->message` set on failure.
bool decode_jpeg_raw(const std::string& bytes, std::vector<uint8_t>* pixels, int64_t* height,
                     int64_t* width, int64_t* channels, JpegError* err) {
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&err->mgr);
  err->mgr.error_exit = jpeg_error_exit;
  err->mgr.emit_message = jpeg_emit_message;
  if (setjmp(err->jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    std::snprintf(err->message, sizeof(err->message),
                  "CMYK JPEG: not supported (libjpeg converts it to no RGB); convert it to RGB");
    err->unsupported = true;
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  // A grayscale JPEG stays one channel; anything else is decoded to RGB.
  const bool gray = cinfo.jpeg_color_space == JCS_GRAYSCALE;
  cinfo.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
  *channels = gray ? 1 : 3;
  if (uint64_t{cinfo.image_width} * cinfo.image_height > kMaxPixels) {
    std::snprintf(err->message, sizeof(err->message),
                  "JPEG of %u x %u pixels: refused (corrupt or too large)", cinfo.image_width,
                  cinfo.image_height);
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_start_decompress(&cinfo);
  *height = cinfo.output_height;
  *width = cinfo.output_width;
  // resize() may throw bad_alloc; the size is bounded by kMaxPixels above.
  const uint64_t row_bytes = uint64_t{cinfo.output_width} * static_cast<uint64_t>(*channels);
  pixels->resize(row_bytes * cinfo.output_height);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = pixels->data() + uint64_t{cinfo.output_scanline} * row_bytes;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

/// Triangle-filter weights for one axis: out[i] draws from in[first[i] ..
/// first[i] + weights[i].size()).
struct AxisWeights {
  std::vector<int64_t> first;
  std::vector<std::vector<float>> weights;
};

AxisWeights axis_weights(int64_t in_size, int64_t out_size) {
  AxisWeights w;
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double support = std::max(scale, 1.0);  // widen the filter when shrinking
  for (int64_t o = 0; o < out_size; ++o) {
    const double center = (static_cast<double>(o) + 0.5) * scale;
    int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(std::floor(center - support)));
    int64_t hi = std::min<int64_t>(in_size, static_cast<int64_t>(std::ceil(center + support)));
    std::vector<double> ws;
    double total = 0;
    for (int64_t i = lo; i < hi; ++i) {
      double t = 1.0 - std::abs((static_cast<double>(i) + 0.5 - center) / support);
      ws.push_back(t > 0 ? t : 0);
      total += ws.back();
    }
    std::vector<float> wf;
    for (double x : ws) wf.push_back(static_cast<float>(total > 0 ? x / total : 0));
    w.first.push_back(lo);
    w.weights.push_back(std::move(wf));
  }
  return w;
}

}  // namespace

Image8 decode_image(const fs::path& path) {
  const std::string file = path.string();
  std::string bytes = haq::read_file(path);
  if (bytes.size() >= 8 && png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) == 0)
    return decode_png(bytes, file);
  if (bytes.size() >= 3 && static_cast<uint8_t>(bytes[0]) == 0xFF &&
      static_cast<uint8_t>(bytes[1]) == 0xD8 && static_cast<uint8_t>(bytes[2]) == 0xFF) {
    Image8 out;
    JpegError err;
    std::memset(err.message, 0, sizeof(err.message));
    if (!decode_jpeg_raw(bytes, &out.pixels, &out.height, &out.width, &out.channels, &err))
      fail(ErrorKind::data, file, "", "{}{}", err.unsupported ? "" : "corrupt or truncated JPEG: ",
           err.message);
    return out;
  }
  fail(ErrorKind::data, file, "header", "neither a PNG nor a JPEG file");
}

Planar resize_bilinear(const Planar& in, int64_t out_h, int64_t out_w) {
  const AxisWeights wx = axis_weights(in.width, out_w);
  const AxisWeights wy = axis_weights(in.height, out_h);
  // Horizontal pass, then vertical (separable filter).
  std::vector<float> tmp(static_cast<size_t>(in.channels * in.height * out_w));
  for (int64_t c = 0; c < in.channels; ++c)
    for (int64_t y = 0; y < in.height; ++y) {
      const float* row = in.values.data() + (c * in.height + y) * in.width;
      float* dst = tmp.data() + (c * in.height + y) * out_w;
      for (int64_t x = 0; x < out_w; ++x) {
        const auto& ws = wx.weights[x];
        const float* src = row + wx.first[x];
        float acc = 0;
        for (size_t k = 0; k < ws.size(); ++k) acc += ws[k] * src[k];
        dst[x] = acc;
      }
    }
  Planar out;
  out.channels = in.channels;
  out.height = out_h;
  out.width = out_w;
  out.values.assign(static_cast<size_t>(in.channels * out_h * out_w), 0.f);
  for (int64_t c = 0; c < in.channels; ++c)
    for (int64_t y = 0; y < out_h; ++y) {
      float* dst = out.values.data() + (c * out_h + y) * out_w;
      const auto& ws = wy.weights[y];
      for (size_t k = 0; k < ws.size(); ++k) {
        const float* src =
            tmp.data() + (c * in.height + wy.first[y] + static_cast<int64_t>(k)) * out_w;
        for (int64_t x = 0; x < out_w; ++x) dst[x] += ws[k] * src[x];
      }
    }
  return out;
}

Planar resize_shorter_side(const Planar& in, int64_t size) {
  int64_t out_h, out_w;
  if (in.height <= in.width) {
    out_h = size;
    out_w = size * in.width / in.height;
  } else {
    out_w = size;
    out_h = size * in.height / in.width;
  }
  if (out_h == in.height && out_w == in.width) return in;
  return resize_bilinear(in, std::max<int64_t>(out_h, 1), std::max<int64_t>(out_w, 1));
}

Planar center_crop(const Planar& in, int64_t size) {
  // std::nearbyint rounds half to even in the default mode, as Python's round().
  const int64_t top = static_cast<int64_t>(std::nearbyint((in.height - size) / 2.0));
  const int64_t left = static_cast<int64_t>(std::nearbyint((in.width - size) / 2.0));
  Planar out;
  out.channels = in.channels;
  out.height = size;
  out.width = size;
  out.values.resize(static_cast<size_t>(in.channels * size * size));
  for (int64_t c = 0; c < in.channels; ++c)
    for (int64_t y = 0; y < size; ++y)
      std::memcpy(out.values.data() + (c * size + y) * size,
                  in.values.data() + (c * in.height + top + y) * in.width + left,
                  static_cast<size_t>(size) * sizeof(float));
  return out;
}

}  // namespace haq::data::detail
