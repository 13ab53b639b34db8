#include "common/npy.h"

#include <cstring>

#include "common/error.h"
#include "common/file.h"

namespace kiln {

namespace {

struct DescrMap { const char* descr; DataType dtype; };
constexpr DescrMap kDescr[] = {
    {"<f4", DataType::kFloat},   {"<f8", DataType::kDouble},  {"<f2", DataType::kFloat16},
    {"|i1", DataType::kInt8},    {"|u1", DataType::kUInt8},   {"<i2", DataType::kInt16},
    {"<u2", DataType::kUInt16},  {"<i4", DataType::kInt32},   {"<u4", DataType::kUInt32},
    {"<i8", DataType::kInt64},   {"<u8", DataType::kUInt64},  {"|b1", DataType::kBool},
};

std::string header_value(const std::string& h, const std::string& key, const std::string& path) {
  auto k = h.find("'" + key + "'");
  if (k == std::string::npos) fail(StatusCode::kInvalidArgument, "'", path, "': .npy header has no ", key);
  auto colon = h.find(':', k);
  if (colon == std::string::npos) fail(StatusCode::kInvalidArgument, "'", path, "': bad .npy header");
  return h.substr(colon + 1);
}

}  // namespace

Tensor read_npy(const std::string& path) {
  auto f = MappedFile::open(path);
  return parse_npy(f->data(), f->size(), path);
}

Tensor parse_npy(const uint8_t* d, size_t n, const std::string& path) {
  if (n < 10 || std::memcmp(d, "\x93NUMPY", 6) != 0)
    fail(StatusCode::kInvalidArgument, "'", path, "' is not a .npy file");
  int major = d[6];
  size_t hlen, hstart;
  if (major == 1) {
    hlen = d[8] | (d[9] << 8);
    hstart = 10;
  } else if (major == 2 || major == 3) {
    if (n < 12) fail(StatusCode::kInvalidArgument, "'", path, "': truncated .npy header");
    hlen = d[8] | (d[9] << 8) | (size_t(d[10]) << 16) | (size_t(d[11]) << 24);
    hstart = 12;
  } else {
    fail(StatusCode::kInvalidArgument, "'", path, "': unsupported .npy version ", major);
  }
  if (hstart + hlen > n) fail(StatusCode::kInvalidArgument, "'", path, "': truncated .npy header");
  std::string h(reinterpret_cast<const char*>(d + hstart), hlen);
  std::string descr = header_value(h, "descr", path);
  auto q1 = descr.find('\''), q2 = descr.find('\'', q1 + 1);
  if (q1 == std::string::npos || q2 == std::string::npos)
    fail(StatusCode::kInvalidArgument, "'", path, "': bad descr in .npy header");
  descr = descr.substr(q1 + 1, q2 - q1 - 1);
  if (descr == "<b1") descr = "|b1";
  if (descr == "<i1") descr = "|i1";
  if (descr == "<u1") descr = "|u1";
  DataType dt = DataType::kUndefined;
  for (const auto& m : kDescr)
    if (descr == m.descr) dt = m.dtype;
  if (dt == DataType::kUndefined)
    fail(StatusCode::kInvalidArgument, "'", path, "': unsupported .npy dtype '", descr, "'");
  std::string fo = header_value(h, "fortran_order", path);
  if (fo.find("True") != std::string::npos && fo.find("True") < fo.find(','))
    fail(StatusCode::kInvalidArgument, "'", path, "': Fortran-order arrays are not supported");
  std::string shape = header_value(h, "shape", path);
  auto p1 = shape.find('('), p2 = shape.find(')');
  if (p1 == std::string::npos || p2 == std::string::npos)
    fail(StatusCode::kInvalidArgument, "'", path, "': bad shape in .npy header");
  Dims dims;
  std::string inner = shape.substr(p1 + 1, p2 - p1 - 1);
  size_t pos = 0;
  while (pos < inner.size()) {
    while (pos < inner.size() && (inner[pos] == ' ' || inner[pos] == ',')) ++pos;
    if (pos >= inner.size()) break;
    size_t end = pos;
    while (end < inner.size() && inner[end] >= '0' && inner[end] <= '9') ++end;
    if (end == pos) fail(StatusCode::kInvalidArgument, "'", path, "': bad shape in .npy header");
    // At most 18 digits: std::stoll of more could throw out of range.
    if (end - pos > 18) fail(StatusCode::kInvalidArgument, "'", path, "': a dimension in the .npy header is too large");
    dims.push_back(std::stoll(inner.substr(pos, end - pos)));
    pos = end;
  }
  // The data the header declares must be in the file before anything is allocated for it (a
  // 149-byte file declaring 8 GB once took that much memory).
  const size_t data_start = hstart + hlen;
  const size_t have = n - data_start;
  unsigned __int128 want = dtype_size(dt);
  for (int64_t d : dims) {
    want *= static_cast<unsigned __int128>(d);
    if (want > have)
      fail(StatusCode::kInvalidArgument, "'", path, "': holds ", have, " data bytes, fewer than the ",
           dtype_name(dt), dims_to_string(dims), " its header declares");
  }
  Tensor t(dt, dims);
  if (n - data_start < t.nbytes())
    fail(StatusCode::kInvalidArgument, "'", path, "': holds ", n - data_start, " data bytes, expected ",
         t.nbytes(), " for ", dtype_name(dt), dims_to_string(dims));
  std::memcpy(t.raw(), d + data_start, t.nbytes());
  return t;
}

void write_npy(const std::string& path, const Tensor& t) {
  const char* descr = nullptr;
  for (const auto& m : kDescr)
    if (m.dtype == t.dtype()) descr = m.descr;
  if (t.dtype() == DataType::kBFloat16) {
    // NumPy has no bfloat16: write float32.
    Tensor f(DataType::kFloat, t.dims());
    for (int64_t i = 0; i < t.numel(); ++i) f.set_f64(i, t.get_f64(i));
    write_npy(path, f);
    return;
  }
  if (!descr) fail(StatusCode::kInvalidArgument, "cannot write ", dtype_name(t.dtype()), " to .npy");
  std::string shape = "(";
  for (size_t i = 0; i < t.rank(); ++i) shape += std::to_string(t.dim(i)) + (t.rank() == 1 || i + 1 < t.rank() ? "," : "");
  shape += ")";
  std::string h = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + h.size() + 1;
  h.append((64 - total % 64) % 64, ' ');
  h.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back(1);
  out.push_back(0);
  out.push_back(static_cast<char>(h.size() & 0xff));
  out.push_back(static_cast<char>(h.size() >> 8));
  out += h;
  out.append(static_cast<const char*>(t.raw()), t.nbytes());
  write_file(path, out);
}

}  // namespace kiln
