#include "ir/attrs.h"

#include <cstring>
#include <sstream>

#include "common/hash.h"

namespace kiln {

namespace {

// Prints every attribute; `structure` prints real numbers only as zero ("0") or not ("x") and
// lists of them by their length, which is all that decides how a kernel runs (Attrs::structure).
class Printer : public AttrVisitor {
 public:
  explicit Printer(bool structure = false) : structure_(structure) {}
  std::ostringstream os;
  void sep(const char* n) { os << (first_ ? "" : " ") << n << "="; first_ = false; }
  void operator()(const char* n, int64_t& v) override { sep(n); os << v; }
  void operator()(const char* n, double& v) override {
    sep(n);
    if (structure_) os << (v == 0 ? "0" : "x");
    else os << v;
  }
  void operator()(const char* n, bool& v) override { sep(n); os << (v ? "true" : "false"); }
  void operator()(const char* n, std::string& v) override { sep(n); os << '"' << v << '"'; }
  void operator()(const char* n, Ints& v) override {
    sep(n); os << "["; for (size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i]; os << "]";
  }
  void operator()(const char* n, Floats& v) override {
    if (structure_) { sep(n); os << "[" << v.size() << " reals]"; return; }
    sep(n); os << "["; for (size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i]; os << "]";
  }
  void operator()(const char* n, DataType& v) override { sep(n); os << dtype_name(v); }
  void operator()(const char* n, Tensor& v) override {
    sep(n);
    if (!v.defined()) { os << "none"; return; }
    os << dtype_name(v.dtype()) << dims_to_string(v.dims());
    if (v.numel() == 1 && !structure_) os << "(" << v.get_f64(0) << ")";
  }
  void operator()(const char* n, expr::Program& v) override { sep(n); os << "{" << v.str() << "}"; }

 private:
  bool structure_;
  bool first_ = true;
};

class Hasher : public AttrVisitor {
 public:
  uint64_t h = 1469598103934665603ull;
  void mix(const void* p, size_t n) { h = fnv1a64(p, n, h); }
  void name(const char* n) { mix(n, std::strlen(n)); }
  void operator()(const char* n, int64_t& v) override { name(n); mix(&v, 8); }
  void operator()(const char* n, double& v) override { name(n); mix(&v, 8); }
  void operator()(const char* n, bool& v) override { name(n); uint8_t b = v; mix(&b, 1); }
  void operator()(const char* n, std::string& v) override { name(n); mix(v.data(), v.size()); }
  void operator()(const char* n, Ints& v) override { name(n); mix(v.data(), v.size() * 8); }
  void operator()(const char* n, Floats& v) override { name(n); mix(v.data(), v.size() * 8); }
  void operator()(const char* n, DataType& v) override { name(n); mix(&v, sizeof v); }
  void operator()(const char* n, Tensor& v) override {
    name(n);
    if (!v.defined()) return;
    auto t = v.dtype();
    mix(&t, sizeof t);
    mix(v.dims().data(), v.dims().size() * 8);
    mix(v.raw(), v.nbytes());
  }
  void operator()(const char* n, expr::Program& v) override {
    name(n);
    std::string s = v.str();
    mix(s.data(), s.size());
  }
};

}  // namespace

std::string Attrs::str() const {
  Printer p;
  const_cast<Attrs*>(this)->accept(p);
  return p.os.str();
}

std::string Attrs::structure() const {
  Printer p(true);
  const_cast<Attrs*>(this)->accept(p);
  return p.os.str();
}

uint64_t Attrs::hash() const {
  Hasher h;
  const_cast<Attrs*>(this)->accept(h);
  return h.h;
}

bool Attrs::equals(const Attrs& o) const {
  // Hash of every field, tensors included: collisions of FNV-64 are not a practical concern here.
  return typeid(*this) == typeid(o) && hash() == o.hash();
}

}  // namespace kiln
