// The calibration cache file (`--calib-cache FILE`, docs/quantization.md): the scales a
// calibration found, so that later builds of the same model skip calibration. Text, one record
// per line:
//   kiln-calibration-cache 1
//   algorithm <entropy|percentile|minmax>
//   model <sha256 of the model as kiln imported it>
//   tensor <name, escaped> <scale, C99 hex float: exactly the double found>
//   end <tensors> <crc32 of everything above, 8 hex digits>
#pragma once
#include <map>
#include <string>
#include <string_view>

namespace kiln {

struct CalibrationTable {
  std::string algorithm;
  std::string model;
  std::map<std::string, double> scales;
};

std::string serialize_calibration(const CalibrationTable& t);

struct CalibrationLoad {
  bool ok = false;
  // When !ok: "corrupt (...)" for a damaged or foreign file, "stale (...)" for one made for
  // another model or algorithm.
  std::string problem;
  bool corrupt = false;
};
// Parses `bytes` into `out`, checking that it was made for `model` with `algorithm`.
CalibrationLoad parse_calibration(std::string_view bytes, const std::string& algorithm,
                                  const std::string& model, CalibrationTable& out);

}  // namespace kiln
