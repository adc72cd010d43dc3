#include "runtime/ops_ref.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace kvcomp {

void embedding_ref(const float* table, const int* ids, int n, int dim, float* out) {
  for (int i = 0; i < n; ++i)
    std::memcpy(out + int64_t(i) * dim, table + int64_t(ids[i]) * dim, sizeof(float) * dim);
}

void rmsnorm_ref(const float* x, const float* w, int n, int dim, float eps, float* out) {
  for (int i = 0; i < n; ++i) {
    const float* xi = x + int64_t(i) * dim;
    float* oi = out + int64_t(i) * dim;
    double ss = 0;
    for (int j = 0; j < dim; ++j) ss += double(xi[j]) * xi[j];
    const float r = float(1.0 / std::sqrt(ss / dim + eps));
    for (int j = 0; j < dim; ++j) oi[j] = xi[j] * r * w[j];
  }
}

// Tiles of kRows weight rows x kToks tokens share every load; rows are spread over the cores.
void matmul_ref(const float* x, const float* w, int n, int in, int out, float* y) {
  constexpr int kRows = 4, kToks = 4;
#pragma omp parallel for schedule(static)
  for (int j0 = 0; j0 < out; j0 += kRows) {
    const int nr = std::min(kRows, out - j0);
    for (int i0 = 0; i0 < n; i0 += kToks) {
      const int nt = std::min(kToks, n - i0);
      float acc[kRows][kToks] = {};
      if (nr == kRows && nt == kToks) {
        const float* w0 = w + int64_t(j0) * in;
        const float* x0 = x + int64_t(i0) * in;
        for (int r = 0; r < kRows; ++r)
          for (int t = 0; t < kToks; ++t) {
            const float* wr = w0 + int64_t(r) * in;
            const float* xt = x0 + int64_t(t) * in;
            float s = 0;
#pragma omp simd reduction(+ : s)
            for (int k = 0; k < in; ++k) s += wr[k] * xt[k];
            acc[r][t] = s;
          }
      } else {
        for (int r = 0; r < nr; ++r)
          for (int t = 0; t < nt; ++t) {
            const float* wr = w + int64_t(j0 + r) * in;
            const float* xt = x + int64_t(i0 + t) * in;
            float s = 0;
#pragma omp simd reduction(+ : s)
            for (int k = 0; k < in; ++k) s += wr[k] * xt[k];
            acc[r][t] = s;
          }
      }
      for (int r = 0; r < nr; ++r)
        for (int t = 0; t < nt; ++t) y[int64_t(i0 + t) * out + j0 + r] = acc[r][t];
    }
  }
}

void rope_ref(float* x, const int* pos, int n, int n_heads, int head_dim, const float* inv_freq) {
  const int half = head_dim / 2;
  std::vector<float> cs(half), sn(half);
  for (int i = 0; i < n; ++i) {
    for (int f = 0; f < half; ++f) {
      // The angle is formed in fp32 as Hugging Face does (position * inv_freq), then its
      // cosine and sine are taken accurately.
      const float angle = float(pos[i]) * inv_freq[f];
      cs[f] = float(std::cos(double(angle)));
      sn[f] = float(std::sin(double(angle)));
    }
    for (int h = 0; h < n_heads; ++h) {
      float* xh = x + (int64_t(i) * n_heads + h) * head_dim;
      for (int f = 0; f < half; ++f) {
        const float a = xh[f], b = xh[f + half];
        xh[f] = a * cs[f] - b * sn[f];
        xh[f + half] = b * cs[f] + a * sn[f];
      }
    }
  }
}

void swiglu_ref(const float* gate, const float* up, int64_t n, float* out) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void add_ref(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void attention_ref(const float* q, const int* q_pos, int n_q, const float* k, const float* v,
                   int n_k, int64_t kv_stride, int n_heads, int n_kv_heads, int head_dim,
                   float* out) {
  const int group = n_heads / n_kv_heads;
  const float scale = 1.0f / std::sqrt(float(head_dim));
#pragma omp parallel
  {
    std::vector<float> p(n_k);
    std::vector<float> acc(head_dim);
#pragma omp for collapse(2) schedule(dynamic, 4)
    for (int i = 0; i < n_q; ++i) {
      for (int h = 0; h < n_heads; ++h) {
        const int kvh = h / group;
        const float* qi = q + (int64_t(i) * n_heads + h) * head_dim;
        const int len = std::min(q_pos[i] + 1, n_k);
        float mx = -INFINITY;
        for (int t = 0; t < len; ++t) {
          const float* kt = k + t * kv_stride + int64_t(kvh) * head_dim;
          float s = 0;
#pragma omp simd reduction(+ : s)
          for (int c = 0; c < head_dim; ++c) s += qi[c] * kt[c];
          p[t] = s * scale;
          mx = std::max(mx, p[t]);
        }
        double sum = 0;
        for (int t = 0; t < len; ++t) {
          p[t] = std::exp(p[t] - mx);
          sum += p[t];
        }
        std::fill(acc.begin(), acc.end(), 0.0f);
        float* a = acc.data();
        for (int t = 0; t < len; ++t) {
          const float* vt = v + t * kv_stride + int64_t(kvh) * head_dim;
          const float pt = p[t];
#pragma omp simd
          for (int c = 0; c < head_dim; ++c) a[c] += pt * vt[c];
        }
        float* oi = out + (int64_t(i) * n_heads + h) * head_dim;
        const float inv = float(1.0 / sum);
        for (int c = 0; c < head_dim; ++c) oi[c] = a[c] * inv;
      }
    }
  }
}

double nll_ref(const float* logits, int vocab, int target) {
  float mx = -INFINITY;
  for (int j = 0; j < vocab; ++j) mx = std::max(mx, logits[j]);
  double sum = 0;
  for (int j = 0; j < vocab; ++j) sum += std::exp(double(logits[j]) - mx);
  return std::log(sum) + mx - double(logits[target]);
}

}  // namespace kvcomp
