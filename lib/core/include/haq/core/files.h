#pragma once
/// \file
/// File helpers: whole-file reads with clear errors, and atomic writes
/// (temporary file in the same folder, fsync, then rename) so that no
/// output is ever left half-written.

#include <filesystem>
#include <string>
#include <vector>

namespace haq {

/// Reads a whole file; throws Error(io) naming the file if it cannot.
std::string read_file(const std::filesystem::path& path);

/// Writes `content` to `path` atomically: a temporary file beside it, then
/// rename. On failure nothing is left behind and Error(io) is thrown.
void write_file_atomic(const std::filesystem::path& path, const std::string& content);

/// Removes the temporary files write_file_atomic leaves in `dir` when its
/// process is killed mid-write (".NAME.tmp.XXXXXX"). For a folder that only
/// this process writes, e.g. a search's --out on start or resume.
void remove_stale_temp_files(const std::filesystem::path& dir);

/// Creates a folder (and parents) for outputs; Error(io) if it cannot, or if
/// it is not writable.
void ensure_output_dir(const std::filesystem::path& dir);

}  // namespace haq
