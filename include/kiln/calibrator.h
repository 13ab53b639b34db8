// INT8 post-training calibration (TensorRT's IInt8Calibrator, reduced to what kiln needs): the
// builder runs the float model on the calibrator's batches, gathers statistics of every tensor it
// will quantize, and derives one scale per tensor with the chosen algorithm. The result can be
// written to, and read back from, a calibration cache (docs/quantization.md), so that later
// builds skip calibration.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "kiln/status.h"
#include "kiln/types.h"

namespace kiln {

class Calibrator {
 public:
  virtual ~Calibrator() = default;
  // Fills `batch` with the next batch's inputs, by input name; false when there are no more.
  // Batches may have any batch size the model accepts. Errors: throw nothing, return false and
  // say why in error().
  virtual bool next_batch(std::map<std::string, Tensor>& batch) = 0;
  // Why next_batch() last returned false, when it was not the end of the data ("" otherwise).
  virtual std::string error() const { return {}; }
  // How many batches there are, when known (progress lines); -1 when not.
  virtual int64_t batch_count() const { return -1; }
};

// A folder of batches, one file per batch, read in name order: `.npy` files (for a model with one
// input) or `.npz` archives of arrays named after the inputs (np.savez; compressed archives are
// refused with a clear message). An unreadable or mistyped file is an error naming it.
Status make_directory_calibrator(const std::string& dir, std::unique_ptr<Calibrator>& out);

}  // namespace kiln
