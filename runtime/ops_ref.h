// CPU twins of the Llama ops, in fp32. They are the CPU backend and the ground truth the GPU
// kernels are tested against; clarity first, then both cores through OpenMP where it is cheap.
#pragma once

#include <cstdint>

namespace kvcomp {

// out[i, :] = table[ids[i], :]. table: [vocab, dim], out: [n, dim].
void embedding_ref(const float* table, const int* ids, int n, int dim, float* out);

// out[i, :] = x[i, :] / sqrt(mean(x[i, :]^2) + eps) * w. x, out: [n, dim] (may alias), w: [dim].
void rmsnorm_ref(const float* x, const float* w, int n, int dim, float eps, float* out);

// y = x W^T: x [n, in], w [out, in] (a Linear weight as stored), y [n, out].
void matmul_ref(const float* x, const float* w, int n, int in, int out, float* y);

// Rotary embedding in place, Hugging Face's rotate_half convention: channel i pairs with
// i + head_dim/2. x: [n, n_heads, head_dim]; pos: [n]; inv_freq: [head_dim / 2].
void rope_ref(float* x, const int* pos, int n, int n_heads, int head_dim, const float* inv_freq);

// out = silu(gate) * up, elementwise over n values (out may alias gate).
void swiglu_ref(const float* gate, const float* up, int64_t n, float* out);

// x += y over n values.
void add_ref(float* x, const float* y, int64_t n);

// Causal attention of one sequence for one layer. q: [n_q, n_heads, head_dim] at positions
// q_pos[i]; k, v: [n_k, n_kv_heads, head_dim] for positions 0..n_k-1 (row stride kv_stride
// floats between tokens); query i sees keys 0..q_pos[i]. out: [n_q, n_heads, head_dim].
// Query head h reads KV head h / (n_heads / n_kv_heads). Scale 1/sqrt(head_dim).
void attention_ref(const float* q, const int* q_pos, int n_q, const float* k, const float* v,
                   int n_k, int64_t kv_stride, int n_heads, int n_kv_heads, int head_dim,
                   float* out);

// Negative log-likelihood of `target` under softmax(logits[0..vocab)), in double.
double nll_ref(const float* logits, int vocab, int target);

}  // namespace kvcomp
