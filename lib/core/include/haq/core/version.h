#pragma once
/// \file
/// haq's version, written into every output.
namespace haq {
/// The tool's version, e.g. "0.1.0".
inline const char* version() { return HAQ_VERSION; }
}  // namespace haq
