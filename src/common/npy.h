// NumPy .npy files (format 1.0/2.0/3.0, little-endian, C order) to and from kiln::Tensor.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "kiln/types.h"

namespace kiln {

// Throws kiln::Error (kIoError / kInvalidArgument) naming the file and the problem.
Tensor read_npy(const std::string& path);
// The same from bytes in memory (a member of an .npz archive); `path` names them in errors.
Tensor parse_npy(const uint8_t* data, size_t size, const std::string& path);
void write_npy(const std::string& path, const Tensor& t);

}  // namespace kiln
