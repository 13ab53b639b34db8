// make_directory_calibrator (kiln/calibrator.h): batches from .npy files and .npz archives.
//
// An .npz is a zip archive of .npy members (numpy's savez). Members are found through the
// archive's central directory (zip64 sizes and offsets included, as numpy writes them); only
// stored members are read: np.savez_compressed's deflated ones are refused by name.
#include <algorithm>
#include <filesystem>

#include "common/api_guard.h"
#include "common/error.h"
#include "common/file.h"
#include "common/npy.h"
#include "kiln/calibrator.h"

namespace kiln {

namespace {

uint64_t le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::map<std::string, Tensor> read_npz(const std::string& path) {
  const std::string bytes = read_file(path);
  const auto* d = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  auto bad = [&](const std::string& why) {
    fail(StatusCode::kInvalidArgument, "'", path, "' is not a readable .npz archive: ", why);
  };
  // End of central directory: 22 bytes plus a comment of up to 64 KiB, at the end.
  size_t eocd = std::string::npos;
  for (size_t i = n >= 22 ? n - 22 : 0; n >= 22; --i) {
    if (le(d + i, 4) == 0x06054b50) {
      eocd = i;
      break;
    }
    if (i == 0 || n - i > 22 + 65535) break;
  }
  if (eocd == std::string::npos) bad("no end of central directory");
  uint64_t entries = le(d + eocd + 10, 2), cd_size = le(d + eocd + 12, 4),
           cd_off = le(d + eocd + 16, 4);
  if (cd_off == 0xffffffffu || entries == 0xffffu) {
    // zip64: the locator sits just before the end record and points at the zip64 end record.
    if (eocd < 20 || le(d + eocd - 20, 4) != 0x07064b50) bad("no zip64 locator");
    const uint64_t z = le(d + eocd - 20 + 8, 8);
    if (z + 56 > n || le(d + z, 4) != 0x06064b50) bad("bad zip64 end record");
    entries = le(d + z + 32, 8);
    cd_size = le(d + z + 40, 8);
    cd_off = le(d + z + 48, 8);
  }
  if (cd_off + cd_size > n) bad("the central directory lies outside the file");
  std::map<std::string, Tensor> out;
  size_t p = cd_off;
  for (uint64_t e = 0; e < entries; ++e) {
    if (p + 46 > n || le(d + p, 4) != 0x02014b50) bad("bad central directory entry");
    const uint64_t method = le(d + p + 10, 2);
    uint64_t csize = le(d + p + 20, 4), usize = le(d + p + 24, 4);
    const uint64_t name_len = le(d + p + 28, 2), extra_len = le(d + p + 30, 2),
                   comment_len = le(d + p + 32, 2);
    uint64_t local = le(d + p + 42, 4);
    if (p + 46 + name_len + extra_len > n) bad("truncated central directory");
    std::string name(reinterpret_cast<const char*>(d + p + 46), name_len);
    // zip64 extra field: the 8-byte values of whichever of usize, csize, local overflowed.
    for (size_t x = p + 46 + name_len; x + 4 <= p + 46 + name_len + extra_len;) {
      const uint64_t id = le(d + x, 2), len = le(d + x + 2, 2);
      if (id == 1) {
        size_t q = x + 4;
        if (usize == 0xffffffffu && q + 8 <= x + 4 + len) usize = le(d + q, 8), q += 8;
        if (csize == 0xffffffffu && q + 8 <= x + 4 + len) csize = le(d + q, 8), q += 8;
        if (local == 0xffffffffu && q + 8 <= x + 4 + len) local = le(d + q, 8);
      }
      x += 4 + len;
    }
    p += 46 + name_len + extra_len + comment_len;
    if (method != 0)
      fail(StatusCode::kInvalidArgument, "'", path, "': member '", name,
           "' is compressed; write calibration batches with np.savez, not np.savez_compressed");
    if (local + 30 > n || le(d + local, 4) != 0x04034b50) bad("bad local header of " + name);
    const size_t data = local + 30 + le(d + local + 26, 2) + le(d + local + 28, 2);
    if (data + csize > n || csize != usize) bad("member " + name + " lies outside the file");
    if (name.size() > 4 && name.substr(name.size() - 4) == ".npy") name.resize(name.size() - 4);
    out[name] = parse_npy(d + data, csize, path + ":" + name);
  }
  return out;
}

class DirectoryCalibrator : public Calibrator {
 public:
  explicit DirectoryCalibrator(std::vector<std::string> files) : files_(std::move(files)) {}
  bool next_batch(std::map<std::string, Tensor>& batch) override {
    error_.clear();
    if (next_ >= files_.size()) return false;
    const std::string& f = files_[next_++];
    try {
      batch.clear();
      if (f.size() > 4 && f.substr(f.size() - 4) == ".npz")
        batch = read_npz(f);
      else
        batch[""] = read_npy(f);  // the model's one input: the builder names it
      return true;
    } catch (const Error& e) {
      error_ = e.message();
      return false;
    }
  }
  std::string error() const override { return error_; }
  int64_t batch_count() const override { return static_cast<int64_t>(files_.size()); }

 private:
  std::vector<std::string> files_;
  size_t next_ = 0;
  std::string error_;
};

}  // namespace

Status make_directory_calibrator(const std::string& dir, std::unique_ptr<Calibrator>& out) {
  return guard([&] {
    namespace fs = std::filesystem;
    std::error_code ec;
    KILN_EXPECT(fs::is_directory(dir, ec), StatusCode::kInvalidArgument, "calibration data '",
                dir, "' is not a folder");
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string ext = e.path().extension().string();
      if (e.is_regular_file() && (ext == ".npy" || ext == ".npz")) files.push_back(e.path().string());
    }
    KILN_EXPECT(!ec, StatusCode::kIoError, "cannot list '", dir, "': ", ec.message());
    KILN_EXPECT(!files.empty(), StatusCode::kInvalidArgument, "calibration folder '", dir,
                "' holds no .npy or .npz batches");
    std::sort(files.begin(), files.end());
    out = std::make_unique<DirectoryCalibrator>(std::move(files));
  });
}

}  // namespace kiln
