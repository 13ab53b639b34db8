#include "expr/program.h"

#include <sstream>

#include "common/error.h"

namespace kiln::expr {

namespace {
struct OpInfo { const char* name; int arity; };
constexpr OpInfo kInfo[] = {
    {"input", 0}, {"const", 0},
    {"cast", 1}, {"neg", 1}, {"abs", 1}, {"sign", 1}, {"not", 1}, {"bitnot", 1}, {"exp", 1},
    {"log", 1}, {"sqrt", 1}, {"rsqrt", 1}, {"recip", 1}, {"sin", 1}, {"cos", 1}, {"tan", 1},
    {"asin", 1}, {"acos", 1}, {"atan", 1}, {"sinh", 1}, {"cosh", 1}, {"tanh", 1}, {"asinh", 1},
    {"acosh", 1}, {"atanh", 1}, {"erf", 1}, {"floor", 1}, {"ceil", 1}, {"round", 1},
    {"sigmoid", 1}, {"softplus", 1}, {"isnan", 1}, {"isposinf", 1}, {"isneginf", 1}, {"relu", 1},
    {"add", 2}, {"sub", 2}, {"mul", 2}, {"div", 2}, {"pow", 2}, {"min", 2}, {"max", 2},
    {"mod", 2}, {"fmod", 2}, {"and", 2}, {"or", 2}, {"xor", 2}, {"bitand", 2}, {"bitor", 2},
    {"bitxor", 2}, {"shl", 2}, {"shr", 2}, {"eq", 2}, {"ne", 2}, {"lt", 2}, {"le", 2}, {"gt", 2},
    {"ge", 2},
    {"select", 3},
};
static_assert(sizeof(kInfo) / sizeof(kInfo[0]) == static_cast<size_t>(Op::kCount));
}  // namespace

const char* op_name(Op op) { return kInfo[static_cast<int>(op)].name; }
int op_arity(Op op) { return kInfo[static_cast<int>(op)].arity; }

bool is_comparison(Op op) { return op >= Op::kEq && op <= Op::kGe; }
bool yields_bool(Op op) {
  return is_comparison(op) || op == Op::kIsNaN || op == Op::kIsPosInf || op == Op::kIsNegInf ||
         op == Op::kNot || op == Op::kAnd || op == Op::kOr || op == Op::kXor;
}

int32_t Program::input(int32_t index) {
  KILN_CHECK(index >= 0 && static_cast<size_t>(index) < input_types.size(), "program input ",
             index);
  Instr in;
  in.op = Op::kInput;
  in.a = index;
  in.dtype = input_types[index];
  code.push_back(in);
  return static_cast<int32_t>(code.size() - 1);
}

int32_t Program::constant(DataType dtype, double value) {
  Instr in;
  in.op = Op::kConst;
  in.dtype = dtype;
  in.fconst = value;
  in.iconst = static_cast<int64_t>(value);
  code.push_back(in);
  return static_cast<int32_t>(code.size() - 1);
}

int32_t Program::constant_int(DataType dtype, int64_t value) {
  int32_t r = constant(dtype, static_cast<double>(value));
  code[r].iconst = value;
  return r;
}

int32_t Program::unary(Op op, int32_t a, DataType dtype) {
  KILN_CHECK(op_arity(op) == 1 && a >= 0 && a < static_cast<int32_t>(code.size()));
  Instr in;
  in.op = op;
  in.a = a;
  in.dtype = yields_bool(op) ? DataType::kBool
             : dtype == DataType::kUndefined ? code[a].dtype : dtype;
  code.push_back(in);
  return static_cast<int32_t>(code.size() - 1);
}

int32_t Program::binary(Op op, int32_t a, int32_t b, DataType dtype) {
  KILN_CHECK(op_arity(op) == 2 && a >= 0 && b >= 0 && a < static_cast<int32_t>(code.size()) &&
             b < static_cast<int32_t>(code.size()));
  Instr in;
  in.op = op;
  in.a = a;
  in.b = b;
  in.dtype = yields_bool(op) ? DataType::kBool
             : dtype == DataType::kUndefined ? code[a].dtype : dtype;
  code.push_back(in);
  return static_cast<int32_t>(code.size() - 1);
}

int32_t Program::select(int32_t cond, int32_t a, int32_t b) {
  Instr in;
  in.op = Op::kSelect;
  in.a = cond;
  in.b = a;
  in.c = b;
  in.dtype = code[a].dtype;
  code.push_back(in);
  return static_cast<int32_t>(code.size() - 1);
}

int32_t Program::cast(int32_t a, DataType to) {
  if (code[a].dtype == to) return a;
  return unary(Op::kCast, a, to);
}

std::string Program::str() const {
  std::ostringstream os;
  os << "in(";
  for (size_t i = 0; i < input_types.size(); ++i) os << (i ? "," : "") << dtype_name(input_types[i]);
  os << ")";
  for (size_t i = 0; i < code.size(); ++i) {
    const Instr& in = code[i];
    os << "; r" << i << ":" << dtype_name(in.dtype) << "=" << op_name(in.op);
    if (in.op == Op::kInput) os << " " << in.a;
    else if (in.op == Op::kConst) {
      if (dtype_is_float(in.dtype)) os << " " << in.fconst; else os << " " << in.iconst;
    } else {
      os << " r" << in.a;
      if (in.b >= 0) os << " r" << in.b;
      if (in.c >= 0) os << " r" << in.c;
    }
  }
  os << "; out(";
  for (size_t i = 0; i < outputs.size(); ++i) os << (i ? "," : "") << "r" << outputs[i];
  os << ")";
  return os.str();
}

bool Program::operator==(const Program& o) const { return str() == o.str(); }

}  // namespace kiln::expr
