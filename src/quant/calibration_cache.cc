#include "quant/calibration_cache.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common/error.h"
#include "common/hash.h"
#include "common/text.h"

namespace kiln {

namespace {

constexpr std::string_view kMagic = "kiln-calibration-cache 1";

std::string crc_hex(std::string_view body) {
  char crc[16];
  std::snprintf(crc, sizeof crc, "%08x", crc32(body.data(), body.size()));
  return crc;
}

bool parse_scale(std::string_view s, double& v) {
  std::string z(s);
  if (z.empty()) return false;
  char* end = nullptr;
  errno = 0;
  v = std::strtod(z.c_str(), &end);
  return errno == 0 && end == z.c_str() + z.size() && std::isfinite(v) && v > 0;
}

}  // namespace

std::string serialize_calibration(const CalibrationTable& t) {
  std::string body = cat(kMagic, "\nalgorithm ", escape(t.algorithm), "\nmodel ", escape(t.model),
                         "\n");
  for (const auto& [name, scale] : t.scales) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%a", scale);
    body += cat("tensor ", escape(name), " ", buf, "\n");
  }
  return body + cat("end ", t.scales.size(), " ", crc_hex(body), "\n");
}

CalibrationLoad parse_calibration(std::string_view bytes, const std::string& algorithm,
                                  const std::string& model, CalibrationTable& out) {
  CalibrationLoad r;
  auto corrupt = [&](const std::string& why) {
    r.problem = "corrupt (" + why + ")";
    r.corrupt = true;
    return r;
  };
  if (bytes.substr(0, kMagic.size()) != kMagic || bytes.size() <= kMagic.size() ||
      bytes[kMagic.size()] != '\n')
    return corrupt("not a kiln calibration cache, or another version of the format");
  const size_t end_pos = bytes.rfind("\nend ");
  if (end_pos == std::string_view::npos || bytes.back() != '\n')
    return corrupt("truncated: no end line");
  std::string_view body = bytes.substr(0, end_pos + 1);
  std::vector<std::string_view> end =
      split_spaces(bytes.substr(end_pos + 1, bytes.size() - end_pos - 2));
  if (end.size() != 3 || end[0] != "end" || end[2] != crc_hex(body))
    return corrupt("checksum mismatch or malformed end line");
  CalibrationTable t;
  size_t pos = kMagic.size() + 1;
  int line_no = 1;
  while (pos < body.size()) {
    const size_t nl = body.find('\n', pos);
    std::string_view line = body.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    std::vector<std::string_view> f = split_spaces(line);
    if (line_no == 2) {
      if (f.size() != 2 || f[0] != "algorithm" || !unescape(f[1], t.algorithm))
        return corrupt("line 2 is not the algorithm line");
      continue;
    }
    if (line_no == 3) {
      if (f.size() != 2 || f[0] != "model" || !unescape(f[1], t.model))
        return corrupt("line 3 is not the model line");
      continue;
    }
    std::string name;
    double scale = 0;
    if (f.size() != 3 || f[0] != "tensor" || !unescape(f[1], name) || !parse_scale(f[2], scale))
      return corrupt(cat("line ", line_no, " is not a tensor line"));
    if (!t.scales.emplace(name, scale).second)
      return corrupt(cat("line ", line_no, " repeats tensor '", name, "'"));
  }
  if (line_no < 3) return corrupt("no model line");
  if (end[1] != std::to_string(t.scales.size()))
    return corrupt(cat("the end line counts ", end[1], " tensors, the file has ", t.scales.size()));
  if (t.algorithm != algorithm) {
    r.problem = cat("stale (made with the ", t.algorithm, " algorithm; this build asks for ",
                    algorithm, ")");
    return r;
  }
  if (t.model != model) {
    r.problem = "stale (made for another model)";
    return r;
  }
  out = std::move(t);
  r.ok = true;
  return r;
}

}  // namespace kiln
