#include "builder/timing_cache.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <vector>

#include "common/error.h"
#include "common/text.h"
#include "common/file.h"
#include "common/hash.h"

namespace kiln {

namespace {

constexpr std::string_view kMagic = "kiln-timing-cache 1";

bool parse_int(std::string_view s, int64_t& v) {
  if (s.empty() || s.size() > 19) return false;
  v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  return true;
}

bool parse_ms(std::string_view s, double& v) {
  if (s.empty() || s.size() > 32) return false;
  std::string z(s);
  char* end = nullptr;
  errno = 0;
  v = std::strtod(z.c_str(), &end);
  return errno == 0 && end == z.c_str() + z.size() && std::isfinite(v) && v >= 0;
}

bool is_key(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string format_ms(double ms) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", ms);
  return buf;
}

}  // namespace

std::string timing_key(std::string_view signature) {
  return sha256_hex(signature.data(), signature.size());
}

const TimingEntry* TimingCache::find(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

void TimingCache::put(const std::string& key, TimingEntry e) {
  // The file keeps a time to 6 significant digits: keep the same rounding in memory, so that a
  // cache read back equals the one written and plans built from either are the same bytes.
  double ms = 0;
  parse_ms(format_ms(e.ms), ms);
  e.ms = ms;
  auto [it, inserted] = entries_.insert_or_assign(key, std::move(e));
  if (inserted) ++added_;
}

std::string TimingCache::serialize() const {
  std::string body = cat(kMagic, "\ndevice ", escape(device_), "\n");
  for (const auto& [key, e] : entries_)
    body += cat("entry ", key, " ", escape(e.choice), " ", format_ms(e.ms), " ", e.candidates, "\n");
  char crc[16];
  std::snprintf(crc, sizeof crc, "%08x", crc32(body.data(), body.size()));
  return body + cat("end ", entries_.size(), " ", crc, "\n");
}

TimingCache::Load TimingCache::load_bytes(std::string_view bytes) {
  Load r;
  auto corrupt = [&](const std::string& why) {
    r.problem = "it is corrupt (" + why + ")";
    return r;
  };
  // Lines, each ending in '\n'; the last must be the `end` line.
  size_t end_pos = bytes.rfind("\nend ");
  if (bytes.substr(0, kMagic.size()) != kMagic || bytes.size() <= kMagic.size() ||
      bytes[kMagic.size()] != '\n')
    return corrupt("not a kiln timing cache, or another version of the format");
  if (end_pos == std::string_view::npos || bytes.back() != '\n')
    return corrupt("truncated: no end line");
  std::string_view body = bytes.substr(0, end_pos + 1);
  std::vector<std::string_view> end = split_spaces(bytes.substr(end_pos + 1, bytes.size() - end_pos - 2));
  int64_t count = 0;
  if (end.size() != 3 || end[0] != "end" || !parse_int(end[1], count) || end[2].size() != 8)
    return corrupt("malformed end line");
  char crc[16];
  std::snprintf(crc, sizeof crc, "%08x", crc32(body.data(), body.size()));
  if (end[2] != crc) return corrupt("checksum mismatch");

  std::map<std::string, TimingEntry> read;
  std::string device;
  size_t pos = kMagic.size() + 1;
  int64_t line_no = 1;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    std::string_view line = body.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    std::vector<std::string_view> f = split_spaces(line);
    if (line_no == 2) {
      if (f.size() != 2 || f[0] != "device" || !unescape(f[1], device))
        return corrupt("line 2 is not the device line");
      continue;
    }
    TimingEntry e;
    if (f.size() != 5 || f[0] != "entry" || !is_key(f[1]) || !unescape(f[2], e.choice) ||
        !parse_ms(f[3], e.ms) || !parse_int(f[4], e.candidates))
      return corrupt(cat("line ", line_no, " is not an entry"));
    if (!read.emplace(std::string(f[1]), std::move(e)).second)
      return corrupt(cat("line ", line_no, " repeats a key"));
  }
  if (line_no < 2) return corrupt("no device line");
  if (static_cast<int64_t>(read.size()) != count)
    return corrupt(cat("the end line counts ", count, " entries, the file has ", read.size()));
  if (device != device_) {
    r.problem = cat("it was made for another device or library versions (", device,
                    "; this build: ", device_, ")");
    return r;
  }
  for (auto& [k, e] : read) entries_.insert_or_assign(k, std::move(e));
  r.read = true;
  return r;
}

TimingCache::Load TimingCache::load(const std::string& path) {
  if (!file_exists(path)) return {};
  std::string bytes;
  try {
    bytes = read_file(path);
  } catch (const Error& e) {
    return {false, "it cannot be read (" + e.message() + ")"};
  }
  return load_bytes(bytes);
}

void TimingCache::save(const std::string& path) const {
  std::string tmp = path + ".tmp";
  write_file(tmp, serialize());
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail(StatusCode::kIoError, "cannot write the timing cache ", path, ": ", std::strerror(errno));
  }
}

}  // namespace kiln
