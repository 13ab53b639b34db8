// Compares two .npy files: same dtype and shape, and every |a-b| <= atol + rtol*|b| (a NaN is
// always a mismatch). Prints the worst element. Used by the model tests to check kiln's outputs
// against saved framework outputs.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common/error.h"
#include "common/npy.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: kiln_npy_compare GOT.npy EXPECTED.npy [rtol] [atol]\n");
    return 2;
  }
  double rtol = argc > 3 ? std::atof(argv[3]) : 1e-4, atol = argc > 4 ? std::atof(argv[4]) : 1e-5;
  try {
    kiln::Tensor a = kiln::read_npy(argv[1]), b = kiln::read_npy(argv[2]);
    if (a.dtype() != b.dtype()) {
      std::printf("dtype %s != expected %s\nMISMATCH\n", kiln::dtype_name(a.dtype()),
                  kiln::dtype_name(b.dtype()));
      return 1;
    }
    if (a.dims() != b.dims()) {
      std::printf("shape %s != expected %s\n", kiln::dims_to_string(a.dims()).c_str(),
                  kiln::dims_to_string(b.dims()).c_str());
      return 1;
    }
    double worst = 0, max_abs = 0, ref_norm = 0;
    int64_t worst_i = 0;
    for (int64_t i = 0; i < b.numel(); ++i) {
      double x = a.get_f64(i), y = b.get_f64(i);
      double r = std::fabs(x - y) / (atol + rtol * std::fabs(y));
      if (!(r <= worst)) { worst = r; worst_i = i; }
      max_abs = std::max(max_abs, std::fabs(x - y));
      ref_norm = std::max(ref_norm, std::fabs(y));
    }
    std::printf("compared %lld elements: max |diff| %.3g (max |ref| %.3g), worst element %lld "
                "at %.3g of the tolerance\n",
                static_cast<long long>(b.numel()), max_abs, ref_norm,
                static_cast<long long>(worst_i), worst);
    if (!(worst <= 1.0)) {
      std::printf("MISMATCH\n");
      return 1;
    }
    std::printf("MATCH\n");
    return 0;
  } catch (const kiln::Error& e) {
    std::printf("error: %s\n", e.message().c_str());
    return 1;
  }
}
