// The demo model's held-out text as the perplexity protocol tokenizes it ([BOS] + encode), cut to
// its first max_chars bytes: the real token stream that tests run models and caches over.
#pragma once

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "models/model_files.h"
#include "models/perplexity.h"
#include "runtime/tokenizer.h"

inline std::vector<int> heldout_ids(const kvcomp::ModelFiles& files,
                                    size_t max_chars = std::string::npos) {
  std::ifstream in(files.dir / "heldout.txt", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > max_chars) text.resize(max_chars);
  const kvcomp::Tokenizer tok = kvcomp::load_tokenizer(files.dir, files.config.bos_token_id);
  return kvcomp::perplexity_ids(tok, files.config.bos_token_id, text);
}
