// The timing cache: what the autotuner measured, kept in a file (`--timing-cache FILE`,
// BuildOptions::timing_cache) so that later builds reuse it instead of timing again, and so that
// the same model, options and cache give the same plan bytes.
//
// Entries are keyed by a step's signature (builder/autotuner.h: the tactic, the op, its reflected
// attributes, input and output dtypes, dims and strides) and belong to one device identity (GPU
// name, compute capability, CUDA, cuDNN and cuBLASLt versions): a cache holds one identity.
//
// File format (text, one record per line, so that a person can read and diff it):
//   kiln-timing-cache 1
//   device <identity, escaped>
//   entry <key: 64 hex digits> <choice, escaped> <time in ms, %.6g> <candidates timed>
//   ...
//   end <entries> <crc32 of every byte before this line, 8 hex digits>
// Escaping: '%', spaces, and bytes outside 0x21..0x7e become %XX.
//
// Reading is strict and never crashes: a file that does not parse, is truncated (no `end` line)
// or fails its checksum is *corrupt*; one whose device line differs from this build's GPU is
// *foreign*. Both are reported (TimingCache::Load::problem) and ignored: the build times again and
// its save replaces the file (a foreign cache's entries would be wrong for this GPU; a corrupt
// one cannot be trusted). A missing file is an empty cache.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace kiln {

struct TimingEntry {
  std::string choice;   // what the tactic chose, in its own words (an algorithm, engine config...)
  double ms = 0;        // its measured time (median of repeats)
  int64_t candidates = 0;
  bool operator==(const TimingEntry& o) const {
    return choice == o.choice && ms == o.ms && candidates == o.candidates;
  }
};

class TimingCache {
 public:
  explicit TimingCache(std::string device_identity) : device_(std::move(device_identity)) {}

  const std::string& device() const { return device_; }
  const std::map<std::string, TimingEntry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  const TimingEntry* find(const std::string& key) const;
  void put(const std::string& key, TimingEntry e);   // replaces an existing entry
  // Entries added since load()/construction: whether save() has anything new to write.
  size_t added() const { return added_; }

  // The file's bytes (entries in key order, so equal caches give equal bytes).
  std::string serialize() const;

  struct Load {
    bool read = false;      // the file existed and its entries were taken
    std::string problem;    // why a file that exists was ignored ("" when it was not)
  };
  // Merges the file's entries when it exists, parses and matches this device; otherwise reports
  // why it was ignored. Never throws for bad content (an unreadable path is a problem too).
  Load load(const std::string& path);
  Load load_bytes(std::string_view bytes);
  // Writes atomically (a temporary file renamed over the path). Throws kIoError.
  void save(const std::string& path) const;

 private:
  std::string device_;
  std::map<std::string, TimingEntry> entries_;
  size_t added_ = 0;
};

// The key of a signature: its SHA-256, as 64 hex digits.
std::string timing_key(std::string_view signature);

}  // namespace kiln
