// Typed node attributes with reflection. Each op declares a plain struct
//
//   struct ConvAttrs : AttrsOf<ConvAttrs> {
//     Ints strides; Int group = 1;
//     template <class V> void reflect(V& v) { v("strides", strides); v("group", group); }
//   };
//
// and printing, hashing, equality and plan serialisation all come from that one reflect().
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "expr/program.h"
#include "kiln/types.h"

namespace kiln {

using Int = int64_t;
using Ints = std::vector<int64_t>;
using Float = double;
using Floats = std::vector<double>;

class AttrVisitor {
 public:
  virtual ~AttrVisitor() = default;
  virtual void operator()(const char* name, int64_t& v) = 0;
  virtual void operator()(const char* name, double& v) = 0;
  virtual void operator()(const char* name, bool& v) = 0;
  virtual void operator()(const char* name, std::string& v) = 0;
  virtual void operator()(const char* name, Ints& v) = 0;
  virtual void operator()(const char* name, Floats& v) = 0;
  virtual void operator()(const char* name, DataType& v) = 0;
  virtual void operator()(const char* name, Tensor& v) = 0;
  virtual void operator()(const char* name, expr::Program& v) = 0;
};

class Attrs {
 public:
  virtual ~Attrs() = default;
  virtual void accept(AttrVisitor& v) = 0;
  virtual std::unique_ptr<Attrs> clone() const = 0;

  // Derived from accept(); see attrs.cc.
  std::string str() const;        // "strides=[1,1] group=1"
  // str() with real numbers as "0" or "x" (non-zero) and lists of them as their length: what a
  // timing signature keys on, so that layers differing only in scales (quantization), epsilons
  // or slopes share one tuning result.
  std::string structure() const;
  uint64_t hash() const;
  bool equals(const Attrs& o) const;
};

template <class T>
class AttrsOf : public Attrs {
 public:
  void accept(AttrVisitor& v) override { static_cast<T*>(this)->reflect(v); }
  std::unique_ptr<Attrs> clone() const override {
    return std::make_unique<T>(*static_cast<const T*>(this));
  }
};

struct NoAttrs : AttrsOf<NoAttrs> {
  template <class V> void reflect(V&) {}
};

}  // namespace kiln
