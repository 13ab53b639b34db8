// Shapes whose dimensions are integers, named symbols ("batch"), or unknown.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kiln/types.h"

namespace kiln {

struct Dim {
  int64_t value = -1;   // >= 0 when known
  std::string symbol;   // non-empty for a named symbolic dim

  Dim() = default;
  Dim(int64_t v) : value(v) {}  // NOLINT: implicit from integers is the common case
  static Dim sym(std::string s) { Dim d; d.symbol = std::move(s); return d; }
  static Dim unknown() { return Dim(); }
  bool known() const { return value >= 0; }
  bool operator==(const Dim& o) const { return value == o.value && symbol == o.symbol; }
  std::string str() const;
};

// The largest rank kiln accepts anywhere (the plan format's limit too). A rank taken from the
// length of a shape operand beyond it is an error: a 70-byte model declaring such an operand of
// 2^26 elements once made shape inference allocate gigabytes.
inline constexpr int64_t kMaxRank = 64;

struct Shape {
  std::vector<Dim> dims;
  bool rank_known = true;

  Shape() = default;
  Shape(std::vector<Dim> d) : dims(std::move(d)) {}  // NOLINT
  static Shape from(const Dims& d);
  static Shape unknown_rank() { Shape s; s.rank_known = false; return s; }

  size_t rank() const { return dims.size(); }
  bool fully_known() const;
  Dims concrete() const;  // throws when not fully known
  std::optional<int64_t> volume() const;
  const Dim& operator[](size_t i) const { return dims[i]; }
  Dim& operator[](size_t i) { return dims[i]; }
  bool operator==(const Shape& o) const { return rank_known == o.rank_known && dims == o.dims; }
  std::string str() const;
};

// Provably equal: equal known sizes, or the same named symbol (two unknown or differently named
// dims may differ at run time). Shapes: known ranks, equal, and every dim provably equal.
bool same_dim(const Dim& a, const Dim& b);
bool same_shape(const Shape& a, const Shape& b);

// Normalises a possibly negative axis against rank; throws kInvalidModel when out of range.
int64_t normalize_axis(int64_t axis, int64_t rank, const char* what = "axis");

// Numpy-style broadcast of shapes; throws kInvalidModel when incompatible.
Shape broadcast_shapes(const std::vector<Shape>& shapes);
Dims broadcast_dims(const std::vector<Dims>& shapes);

}  // namespace kiln
