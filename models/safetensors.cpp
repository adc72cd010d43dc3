// safetensors layout: [u64 little-endian N][N bytes of JSON header][data section]. The header
// maps each tensor name to {dtype, shape, data_offsets: [begin, end]} with offsets relative to
// the start of the data section, plus an optional "__metadata__" string map. Nothing in the file
// is trusted: every offset and size is checked before a pointer into the mapping is formed.
#include "models/safetensors.h"

#include <algorithm>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "runtime/json_kind.h"
#include "runtime/error.h"
#include "runtime/half.h"

// Tensor data is read with memcpy as stored (little-endian).
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the safetensors reader assumes a little-endian host"
#endif

namespace kvcomp {

namespace {

using nlohmann::json;

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

bool parse_dtype(const std::string& s, DType* out) {
  if (s == "F32") {
    *out = DType::kF32;
  } else if (s == "F16") {
    *out = DType::kF16;
  } else if (s == "BF16") {
    *out = DType::kBF16;
  } else {
    return false;
  }
  return true;
}

// A JSON integer as a non-negative int64; false for anything else (negative, float, > 2^63-1).
bool json_to_nonneg_i64(const json& j, int64_t* out) {
  if (j.is_number_unsigned()) {
    const uint64_t v = j.get<uint64_t>();
    if (v > uint64_t(std::numeric_limits<int64_t>::max())) return false;
    *out = int64_t(v);
    return true;
  }
  if (j.is_number_integer()) {
    const int64_t v = j.get<int64_t>();
    if (v < 0) return false;
    *out = v;
    return true;
  }
  return false;
}

}  // namespace

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
  }
  return "?";
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32:
      return 4;
    case DType::kF16:
      return 2;
    case DType::kBF16:
      return 2;
  }
  return 0;
}

int64_t TensorInfo::numel() const {
  // A zero dimension makes the tensor empty whatever the others are (they need not multiply
  // without overflow then).
  for (int64_t d : shape) {
    if (d == 0) return 0;
  }
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

json parse_header_text(const std::string& header_json, const std::string& source) {
  try {
    return json::parse(header_json);
  } catch (const json::exception& e) {
    fail(source, ": safetensors header is not valid JSON: ", e.what());
  }
}

// "__metadata__": absent, null or {string: string}.
std::map<std::string, std::string> parse_metadata(const json& header, const std::string& source) {
  std::map<std::string, std::string> metadata;
  const auto meta = header.find("__metadata__");
  if (meta == header.end() || meta->is_null()) return metadata;
  check(meta->is_object(), source, ": '__metadata__' must be an object of strings, got ",
        json_kind(*meta));
  for (const auto& [k, v] : meta->items()) {
    check(v.is_string(), source, ": '__metadata__' entry '", k, "' must be a string, got ",
          json_kind(v));
    metadata.emplace(k, v.get<std::string>());
  }
  return metadata;
}

std::map<std::string, TensorInfo> parse_tensor_entries(const json& header, const uint8_t* base,
                                                       size_t data_offset, size_t file_size,
                                                       const std::string& source) {
  check(data_offset <= file_size, source, ": header ends at byte ", data_offset,
        " but the file has only ", file_size, " bytes; the file is truncated");
  const uint64_t data_size = file_size - data_offset;
  check(header.is_object(), source, ": safetensors header must be a JSON object, got ",
        json_kind(header));

  std::map<std::string, TensorInfo> tensors;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;  // read by SafetensorsFile
    const std::string where = source + ": tensor '" + name + "'";
    check(entry.is_object(), where, ": header entry must be an object, got ", json_kind(entry));

    TensorInfo t;
    t.name = name;
    t.file = source;

    const auto dt = entry.find("dtype");
    check(dt != entry.end(), where, ": no 'dtype'");
    check(dt->is_string(), where, ": 'dtype' must be a string, got ", json_kind(*dt));
    const std::string& dtype_str = dt->get_ref<const std::string&>();
    check(parse_dtype(dtype_str, &t.dtype), where, ": unsupported dtype ", dtype_str,
          " (supported: F32, F16, BF16)");

    const auto sh = entry.find("shape");
    check(sh != entry.end(), where, ": no 'shape'");
    check(sh->is_array(), where, ": 'shape' must be an array, got ", json_kind(*sh));
    for (const json& d : *sh) {
      int64_t v = 0;
      check(json_to_nonneg_i64(d, &v), where, ": shape entries must be non-negative integers");
      t.shape.push_back(v);
    }

    const auto off = entry.find("data_offsets");
    check(off != entry.end(), where, ": no 'data_offsets'");
    int64_t begin = 0, end = 0;
    check(off->is_array() && off->size() == 2 && json_to_nonneg_i64((*off)[0], &begin) &&
              json_to_nonneg_i64((*off)[1], &end),
          where, ": 'data_offsets' must be [begin, end] with non-negative integers");
    check(begin <= end, where, ": data_offsets [", begin, ", ", end, "] has begin > end");
    check(uint64_t(end) <= data_size, where, ": data_offsets [", begin, ", ", end,
          "] extend beyond the data section (", data_size, " bytes); the file is truncated");
    const uint64_t nbytes = uint64_t(end - begin);

    // numel * dtype_size must equal nbytes; bound the running product by it so that no
    // shape, however large, overflows.
    const uint64_t max_numel = nbytes / dtype_size(t.dtype);
    uint64_t numel = 1;
    bool too_big = false;
    for (int64_t v : t.shape) {
      if (v == 0) {
        numel = 0;  // empty whatever the other dimensions are
        too_big = false;
        break;
      }
      if (uint64_t(v) > max_numel / numel) too_big = true;
      if (!too_big) numel *= uint64_t(v);
    }
    check(!too_big, where, ": data_offsets [", begin, ", ", end, "] span ", nbytes,
          " bytes but shape ", shape_string(t.shape), " of ", dtype_str, " needs more");
    const uint64_t expected = numel * dtype_size(t.dtype);
    check(nbytes == expected, where, ": data_offsets [", begin, ", ", end, "] span ", nbytes,
          " bytes but shape ", shape_string(t.shape), " of ", dtype_str, " needs ", expected);

    t.nbytes = size_t(nbytes);
    t.data = base ? base + data_offset + size_t(begin) : nullptr;
    t.offset = uint64_t(begin);
    tensors.emplace(name, std::move(t));
  }
  // The tensors' bytes tile the data section exactly: no two share bytes (a tensor overlapping
  // another would read its data) and none belongs to no tensor (a hole can hide another file's
  // contents); the safetensors format requires both.
  std::vector<const TensorInfo*> by_offset;
  for (const auto& [name, t] : tensors)
    if (t.nbytes > 0) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->offset != b->offset ? a->offset < b->offset : a->name < b->name;
  });
  // Overlaps first: two tensors on the same bytes leave a hole where one of them belonged, and
  // the overlap is what to report.
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo &a = *by_offset[i - 1], &t = *by_offset[i];
    check(t.offset >= a.offset + a.nbytes, source, ": tensors '", a.name, "' (data_offsets [",
          a.offset, ", ", a.offset + a.nbytes, "]) and '", t.name, "' ([", t.offset, ", ",
          t.offset + t.nbytes, "]) overlap: every tensor needs its own bytes");
  }
  uint64_t at = 0;  // the end of the tensors so far
  for (size_t i = 0; i < by_offset.size(); ++i) {
    const TensorInfo& t = *by_offset[i];
    check(t.offset == at, source, ": data section bytes [", at, ", ", t.offset,
          ") belong to no tensor (before '", t.name, "'); safetensors files have no holes");
    at = t.offset + t.nbytes;
  }
  check(at == data_size, source, ": data section bytes [", at, ", ", data_size,
        ") after the last tensor belong to no tensor; safetensors files have no holes");
  return tensors;
}

}  // namespace

std::map<std::string, TensorInfo> parse_safetensors_header(const std::string& header_json,
                                                           const uint8_t* base, size_t data_offset,
                                                           size_t file_size,
                                                           const std::string& source) {
  const json header = parse_header_text(header_json, source);
  auto tensors = parse_tensor_entries(header, base, data_offset, file_size, source);
  parse_metadata(header, source);  // validated, not returned
  return tensors;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : path_(path) {
  const std::string src = path.string();
  const int fd = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  check(fd >= 0, src, ": cannot open: ", std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(src, ": not a regular file");
  }
  size_ = size_t(st.st_size);
  if (size_ < 8) {
    ::close(fd);
    fail(src, ": truncated: ", size_,
         " bytes, but a safetensors file starts with an 8-byte header length");
  }
  map_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    fail(src, ": mmap failed: ", std::strerror(map_errno));
  }

  // From here on the destructor will not run if we throw, so unmap on failure.
  try {
    const uint8_t* bytes = static_cast<const uint8_t*>(map_);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
    check(header_len <= size_ - 8, src, ": header length ", header_len,
          " extends beyond the file (", size_,
          " bytes); the file is truncated or not a safetensors file");
    const std::string header_text(reinterpret_cast<const char*>(bytes + 8), size_t(header_len));
    const json header = parse_header_text(header_text, src);
    tensors_ = parse_tensor_entries(header, bytes, 8 + size_t(header_len), size_, src);
    metadata_ = parse_metadata(header, src);
  } catch (...) {
    ::munmap(map_, size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, size_);
}

std::map<std::string, std::string> parse_weight_map(const std::string& index_json,
                                                    const std::string& src) {
  json index;
  try {
    index = json::parse(index_json);
  } catch (const json::exception& e) {
    fail(src, ": not valid JSON: ", e.what());
  }
  check(index.is_object(), src, ": must be a JSON object");
  const auto wm = index.find("weight_map");
  check(wm != index.end(), src, ": no 'weight_map'");
  check(wm->is_object(), src, ": 'weight_map' must be an object {tensor: shard file}");
  std::map<std::string, std::string> out;
  for (const auto& [tensor, shard] : wm->items()) {
    check(shard.is_string(), src, ": weight_map entry for tensor '", tensor,
          "' must be a file name, got ", json_kind(shard));
    const std::string& name = shard.get_ref<const std::string&>();
    const std::filesystem::path rel(name);
    check(!name.empty() && rel.is_relative() && rel.filename() == rel &&
              name != "." && name != "..",
          src, ": shard name '", name, "' (tensor '", tensor,
          "') must be a plain file name in the model directory");
    out.emplace(tensor, name);
  }
  check(!out.empty(), src, ": 'weight_map' lists no tensors");
  return out;
}

Checkpoint::Checkpoint(const std::filesystem::path& model_dir) : dir_(model_dir) {
  namespace fs = std::filesystem;
  const std::string d = model_dir.string();
  std::error_code ec;
  check(fs::exists(model_dir, ec), "model directory '", d, "' does not exist");
  check(fs::is_directory(model_dir, ec), "model path '", d, "' is not a directory");

  const fs::path index_path = model_dir / kIndexFile;
  const fs::path single_path = model_dir / kSingleFile;

  if (fs::exists(index_path, ec)) {
    const std::string src = index_path.string();
    std::ifstream in(index_path, std::ios::binary);
    check(bool(in), src, ": cannot open");
    std::ostringstream text;
    text << in.rdbuf();
    const std::map<std::string, std::string> wm = parse_weight_map(text.str(), src);
    // Open each shard once, in name order.
    std::map<std::string, SafetensorsFile*> shards;
    for (const auto& [tensor, shard] : wm) shards.emplace(shard, nullptr);
    for (auto& [name, file] : shards) {
      const fs::path p = model_dir / name;
      check(fs::is_regular_file(p, ec), src, ": shard '", name,
            "' listed in the weight_map is missing (", p.string(), ")");
      files_.push_back(std::make_unique<SafetensorsFile>(p));
      file = files_.back().get();
    }
    for (const auto& [tensor, shard] : wm) {
      const SafetensorsFile* f = shards.at(shard);
      const auto it = f->tensors().find(tensor);
      check(it != f->tensors().end(), src, ": tensor '", tensor, "' is mapped to shard '", shard,
            "', which does not contain it");
      index_.emplace(tensor, &it->second);
    }
  } else if (fs::exists(single_path, ec)) {
    files_.push_back(std::make_unique<SafetensorsFile>(single_path));
    for (const auto& [name, t] : files_.back()->tensors()) index_.emplace(name, &t);
  } else {
    std::string hint;
    if (fs::exists(model_dir / "pytorch_model.bin", ec) ||
        fs::exists(model_dir / "pytorch_model.bin.index.json", ec)) {
      hint = " (it holds PyTorch .bin weights: convert them to safetensors, see weights.md)";
    }
    fail("model directory '", d, "' holds neither ", kSingleFile, " nor ", kIndexFile,
         " (a sharded checkpoint)", hint);
  }
}

const TensorInfo* Checkpoint::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

const TensorInfo& Checkpoint::get(const std::string& name) const {
  const TensorInfo* t = find(name);
  check(t != nullptr, "model directory '", dir_.string(), "': no tensor '", name, "'");
  return *t;
}

std::vector<float> tensor_to_float(const TensorInfo& t) {
  const size_t n = t.nbytes / dtype_size(t.dtype);
  check(t.data != nullptr || n == 0, t.file, ": tensor '", t.name, "' has no data");
  std::vector<float> out(n);
  // Offsets in a safetensors file need not be aligned: read through memcpy.
  switch (t.dtype) {
    case DType::kF32:
      if (n) std::memcpy(out.data(), t.data, n * 4);
      break;
    case DType::kF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        out[i] = fp16_to_float(h);
      }
      break;
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        out[i] = bf16_to_float(h);
      }
      break;
  }
  return out;
}

}  // namespace kvcomp

namespace kvcomp {
namespace {

// First index i < n with (x[i] & mask) == mask (exponent all ones: NaN or infinity), or -1.
// Blocks of 512 words of 8 bytes are tested with a branch-free lane test (y = (x & m) ^ m has a
// zero lane exactly where a value has every bit of m set: the classic has-zero-lane test), and a
// block that may hold one is scanned value by value, so the scan runs near memory speed.
template <typename U>
int64_t first_all_ones(const uint8_t* data, int64_t n, U mask) {
  constexpr int kLanes = 8 / sizeof(U);
  uint64_t m = 0, ones = 0, highs = 0;
  for (int l = 0; l < kLanes; ++l) {
    m |= uint64_t(mask) << (8 * sizeof(U) * l);
    ones |= uint64_t(1) << (8 * sizeof(U) * l);
    highs |= uint64_t(1) << (8 * sizeof(U) * l + 8 * sizeof(U) - 1);
  }
  auto exact = [&](int64_t b, int64_t e) -> int64_t {
    for (int64_t i = b; i < e; ++i) {
      U x;
      std::memcpy(&x, data + i * sizeof(U), sizeof(U));
      if ((x & mask) == mask) return i;
    }
    return -1;
  };
  constexpr int64_t kBlock = 512 * kLanes;  // values per block
  int64_t b = 0;
  for (; b + kBlock <= n; b += kBlock) {
    bool any = false;
    for (int64_t w = 0; w < kBlock / kLanes; ++w) {
      uint64_t x;
      std::memcpy(&x, data + (b + w * kLanes) * sizeof(U), 8);
      const uint64_t y = (x & m) ^ m;
      any |= ((y - ones) & ~y & highs) != 0;
    }
    if (any) {
      const int64_t i = exact(b, b + kBlock);
      if (i >= 0) return i;
    }
  }
  return exact(b, n);
}

}  // namespace

int64_t first_nonfinite(const TensorInfo& t) {
  const int64_t n = int64_t(t.nbytes / dtype_size(t.dtype));
  switch (t.dtype) {
    case DType::kF32:
      return first_all_ones<uint32_t>(t.data, n, 0x7f800000u);
    case DType::kF16:
      return first_all_ones<uint16_t>(t.data, n, uint16_t(0x7c00));
    case DType::kBF16:
      return first_all_ones<uint16_t>(t.data, n, uint16_t(0x7f80));
    default:
      fail(t.file, ": tensor '", t.name, "': no finiteness test for dtype ", dtype_name(t.dtype));
  }
}

}  // namespace kvcomp
