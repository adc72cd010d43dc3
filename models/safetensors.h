// Reader for .safetensors files (single or sharded through model.safetensors.index.json).
// Files are memory-mapped; every header field, offset and size is checked against the file
// before any tensor is touched.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kvcomp {

enum class DType { kF32, kF16, kBF16 };

const char* dtype_name(DType t);  // "F32", "F16", "BF16"
size_t dtype_size(DType t);
std::string shape_string(const std::vector<int64_t>& shape);  // "[4096, 32000]"

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // into the mapping; valid while the file is open
  size_t nbytes = 0;
  uint64_t offset = 0;  // its begin in the data section (data_offsets[0])
  std::string file;     // path of the file holding it, for messages
  int64_t numel() const;
};

// One mapped .safetensors file.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::filesystem::path path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Parses a safetensors header (the JSON after the 8-byte length) for a file of `file_size`
// bytes whose data section starts at `data_offset`; checks every entry. `base` may be null
// (for fuzzing: offsets are checked, no data is read). Throws Error naming `source`.
// model.safetensors.index.json's weight_map: tensor name -> shard file name (a plain file name
// in the model directory). Throws Error naming src for anything else.
std::map<std::string, std::string> parse_weight_map(const std::string& index_json,
                                                    const std::string& src);

std::map<std::string, TensorInfo> parse_safetensors_header(const std::string& header_json,
                                                           const uint8_t* base, size_t data_offset,
                                                           size_t file_size,
                                                           const std::string& source);

// A checkpoint: every tensor of a model directory, from model.safetensors or from the shards
// listed in model.safetensors.index.json.
class Checkpoint {
 public:
  explicit Checkpoint(const std::filesystem::path& model_dir);

  // nullptr when absent.
  const TensorInfo* find(const std::string& name) const;
  // Throws Error naming the tensor and the directory when absent.
  const TensorInfo& get(const std::string& name) const;
  const std::map<std::string, const TensorInfo*>& tensors() const { return index_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*> index_;
};

// Converts any supported dtype to fp32.
std::vector<float> tensor_to_float(const TensorInfo& t);

// The index of t's first NaN or infinity, or -1 when every value is finite.
int64_t first_nonfinite(const TensorInfo& t);

}  // namespace kvcomp
