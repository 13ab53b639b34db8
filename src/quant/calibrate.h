// INT8 scales for a build (BuildOptions::int8): from the calibration cache when it was made for
// this model and algorithm, else by calibrating (the float model run on the calibrator's batches,
// on the build's device, each quantized tensor's |x| histogram gathered), after which the cache is
// written when one is named.
#pragma once
#include <functional>
#include <map>
#include <string>

#include "ir/graph.h"
#include "kiln/builder.h"

namespace kiln {

// `g` is the model as imported (nothing fixed or optimised yet); it is not modified.
std::map<std::string, double> int8_scales(const Graph& g, const BuildOptions& o,
                                          const std::function<void(const std::string&)>& report);

// sha256 of what a calibration depends on: the imported graph.
std::string calibration_model_hash(const Graph& g, const BuildOptions& o);

}  // namespace kiln
