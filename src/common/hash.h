// Hashes: FNV-1a 64 for keys, CRC-32C style checksum for plan sections, SHA-256 (FIPS 180-4)
// where a digest is compared with one that other tools computed (the demo's predictions).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln {

inline uint64_t fnv1a64(const void* data, size_t n, uint64_t h = 1469598103934665603ull) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}
inline uint64_t fnv1a64(std::string_view s, uint64_t h = 1469598103934665603ull) {
  return fnv1a64(s.data(), s.size(), h);
}

uint32_t crc32(const void* data, size_t n, uint32_t crc = 0);

// SHA-256 of n bytes, as 64 lowercase hex digits (what sha256sum and hashlib print).
std::string sha256_hex(const void* data, size_t n);

}  // namespace kiln
