#include "ir/shape.h"

#include "common/error.h"

namespace kiln {

std::string Dim::str() const {
  if (known()) return std::to_string(value);
  if (!symbol.empty()) return symbol;
  return "?";
}

Shape Shape::from(const Dims& d) {
  Shape s;
  for (int64_t x : d) s.dims.emplace_back(x);
  return s;
}

bool Shape::fully_known() const {
  if (!rank_known) return false;
  for (const auto& d : dims)
    if (!d.known()) return false;
  return true;
}

Dims Shape::concrete() const {
  KILN_CHECK(fully_known(), "shape ", str(), " is not concrete");
  Dims out;
  for (const auto& d : dims) out.push_back(d.value);
  return out;
}

std::optional<int64_t> Shape::volume() const {
  if (!fully_known()) return std::nullopt;
  int64_t n = 1;
  for (const auto& d : dims) n *= d.value;
  return n;
}

bool same_dim(const Dim& a, const Dim& b) {
  if (a.known() || b.known()) return a.known() && b.known() && a.value == b.value;
  return !a.symbol.empty() && a.symbol == b.symbol;
}

bool same_shape(const Shape& a, const Shape& b) {
  if (!a.rank_known || !b.rank_known || a.rank() != b.rank()) return false;
  for (size_t i = 0; i < a.rank(); ++i)
    if (!same_dim(a[i], b[i])) return false;
  return true;
}

std::string Shape::str() const {
  if (!rank_known) return "[*]";
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ",";
    s += dims[i].str();
  }
  return s + "]";
}

int64_t normalize_axis(int64_t axis, int64_t rank, const char* what) {
  int64_t a = axis < 0 ? axis + rank : axis;
  KILN_EXPECT(a >= 0 && a < std::max<int64_t>(rank, 1) && (rank > 0 || a == 0),
              StatusCode::kInvalidModel, what, " ", axis, " is out of range for rank ", rank);
  return a;
}

Shape broadcast_shapes(const std::vector<Shape>& shapes) {
  size_t rank = 0;
  for (const auto& s : shapes) {
    if (!s.rank_known) return Shape::unknown_rank();
    rank = std::max(rank, s.rank());
  }
  Shape out;
  out.dims.resize(rank, Dim(1));
  for (const auto& s : shapes) {
    size_t off = rank - s.rank();
    for (size_t i = 0; i < s.rank(); ++i) {
      const Dim& d = s.dims[i];
      Dim& o = out.dims[off + i];
      if (d.known() && d.value == 1) continue;
      if (o.known() && o.value == 1) { o = d; continue; }
      if (d.known() && o.known()) {
        KILN_EXPECT(d.value == o.value, StatusCode::kInvalidModel, "shapes cannot broadcast: ",
                    [&] { std::string r; for (auto& x : shapes) r += x.str() + " "; return r; }());
        continue;
      }
      if (d == o) continue;
      if (d.known()) { o = d; continue; }  // a known dim beats a symbol (the symbol must equal it)
      if (!o.known() && o.symbol.empty()) o = d;
    }
  }
  return out;
}

Dims broadcast_dims(const std::vector<Dims>& shapes) {
  std::vector<Shape> s;
  for (const auto& d : shapes) s.push_back(Shape::from(d));
  return broadcast_shapes(s).concrete();
}

}  // namespace kiln
