#pragma once
/// \file
/// File helpers: whole-file reads with clear errors, and atomic writes
/// (temporary file in the same folder, fsync, then rename) so that no
/// output is ever left half-written.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace haq {

/// Size bounds of the input policy, per format, checked before reading.
inline constexpr uint64_t kMaxTextFileBytes = uint64_t{256} << 20;    ///< JSON, CSV, label lists, images
inline constexpr uint64_t kMaxCheckpointBytes = uint64_t{1} << 30;    ///< checkpoint/state.bin
inline constexpr uint64_t kMaxModelFileBytes = uint64_t{2} << 30;     ///< an ONNX protobuf (protobuf's own limit)

/// Non-throwing tests of a path (std::filesystem's plain overloads throw on
/// a name too long or a loop of symlinks, which user input can hold): false
/// when the path cannot be examined.
bool path_exists(const std::filesystem::path& path) noexcept;
bool path_is_regular_file(const std::filesystem::path& path) noexcept;
bool path_is_directory(const std::filesystem::path& path) noexcept;

/// The input policy: opens `path` without blocking (O_NONBLOCK, so a FIFO
/// never blocks), then checks with fstat that it is a regular file (no FIFO,
/// device, socket or folder) of at most `max_bytes`. Returns its size;
/// throws Error(io) naming the file otherwise. `what` names the expected
/// content in messages ("an ONNX model").
uint64_t check_input_file(const std::filesystem::path& path, uint64_t max_bytes, const char* what = "a file");

/// Reads a whole file under the input policy (check_input_file with
/// `max_bytes`); throws Error(io) naming the file if it cannot.
std::string read_file(const std::filesystem::path& path, uint64_t max_bytes = kMaxTextFileBytes);

/// Writes `content` to `path` atomically: a temporary file beside it
/// (".NAME.haq-tmp.XXXXXX"), then rename. The output policy holds first
/// (check_output_target). On failure nothing is left behind and Error(io) is
/// thrown.
void write_file_atomic(const std::filesystem::path& path, const std::string& content);

/// The output policy: haq writes only regular files. Throws Error(io) if
/// `path` is a symlink, exists and is not a regular file, or is one of the
/// run's inputs (register_run_input). A missing file is fine.
void check_output_target(const std::filesystem::path& path);

/// Records a file the user gave as an input of this run (model, policy,
/// profile, ...): no writer of this process may replace it. A missing file
/// is ignored.
void register_run_input(const std::filesystem::path& path);

/// Forgets the inputs register_run_input recorded (for tests).
void clear_run_inputs();

/// True for the name of a temporary file of write_file_atomic
/// (".NAME.haq-tmp.XXXXXX"); the user's own ".NAME.tmp.XXXXXX" is not one.
bool is_haq_temp_name(const std::string& filename);

/// Removes the temporary files write_file_atomic leaves in `dir` when its
/// process is killed mid-write (is_haq_temp_name, regular files only). For a
/// folder that only this process writes, e.g. a search's --out under its lock.
void remove_stale_temp_files(const std::filesystem::path& dir);

/// An advisory lock (flock) on an output folder, held while the object lives.
/// A second process that asks for the same folder gets Error(io) naming the
/// holder's pid; the same process may take it again (nested writers, such as
/// a sweep job and its search).
class OutputDirLock {
 public:
  OutputDirLock() = default;
  /// Locks `dir` (which must exist); throws Error(io) if another process holds it.
  explicit OutputDirLock(const std::filesystem::path& dir);
  ~OutputDirLock();
  OutputDirLock(OutputDirLock&& other) noexcept;
  OutputDirLock& operator=(OutputDirLock&& other) noexcept;
  OutputDirLock(const OutputDirLock&) = delete;
  OutputDirLock& operator=(const OutputDirLock&) = delete;

 private:
  void release();
  unsigned long long dev_ = 0, ino_ = 0;
  bool held_ = false;
};

/// ensure_output_dir, then its lock.
OutputDirLock lock_output_dir(const std::filesystem::path& dir);

/// Creates a folder (and parents) for outputs; Error(io) if it cannot, or if
/// it is not writable.
void ensure_output_dir(const std::filesystem::path& dir);

}  // namespace haq
