/* A bf16 GEMM on AMX tiles (Sapphire Rapids and later): C[m, n] (+)= sum_k A[m, k] W[n, k] for the
 * output columns of one worker, float32 accumulation and output. */
#ifndef LNX_KERNELS_AMX_H
#define LNX_KERNELS_AMX_H

#include <stddef.h>
#include <stdint.h>

/* Non-zero when the CPU has AMX-BF16 (and LLAVANEXT_CPU_MASK leaves it) and the kernel grants this
 * process the tile state (requested once, the same request oneDNN makes). */
int lnx_amx_available(void);
/* The same for AMX-INT8 (the quantized products' tile variant, quant_amx.c). */
int lnx_amx_int8_available(void);

/* Loads the calling thread's tile configuration (palette 1): tile t has rows[t] rows of colsb[t]
 * bytes, t < 8. The caller runs its tile instructions, then releases the tiles (_tile_release). */
void lnx_amx_configure(const uint8_t rows[8], const uint16_t colsb[8]);

/* Bytes of the per-call packing buffer lnx_amx_linear needs (64-byte aligned). */
size_t lnx_amx_pack_bytes(void);

/* Where lnx_amx_linear puts its outputs as bf16: C16[m, n] = bf16(act(sum_k A[m, k] W[n, k] +
 * bias[n])), row stride ldc16; bias may be NULL, act an lnx_act or < 0 (none). */
typedef struct lnx_amx_out {
    uint16_t *C16;
    int64_t ldc16;
    const float *bias;
    int act;
} lnx_amx_out;

/*
 * C[m, n] = (accumulate ? C[m, n] : 0) + sum_k A[m, k] W[n, k] for m < M and
 * n0 <= n < n1, run in the calling thread. A: bf16 [ceil32(M)][lda] with lda >= ceil32(K) and
 * zeros in the padding (rows M.. and columns K .. ceil32(K)); W: bf16 rows of K values, row n at
 * W + n * ldw (the stored weights [N][K]: ldw = K); K even; C float32 with row stride ldc. n0
 * must be a multiple of 32. pack: lnx_amx_pack_bytes() bytes.
 * With out (not NULL) the outputs go to out->C16 as bf16 instead (C unused), computed per 32 rows
 * in float32 and rounded once: what the float32 product, a bias and activation pass and a
 * rounding of the result give, without float32 outputs in memory. Then K <= LNX_AMX_OUT16_MAX_K
 * (one block of K) and accumulate 0.
 */
void lnx_amx_linear(int64_t M, int64_t N, int64_t K, const uint16_t *A, int64_t lda, const uint16_t *W, int64_t ldw,
                    float *C, int64_t ldc, int64_t n0, int64_t n1, int accumulate, const lnx_amx_out *out,
                    void *pack);
/* The largest K lnx_amx_linear takes with out. */
#define LNX_AMX_OUT16_MAX_K 4096

/* ---- attention on tiles: keys and values packed once per head, products over the packed form ----
 * Keys X [n][d] (bf16, row stride ldx) packed for S = Q X^T: per group of 16 keys, ceil32(d) / 32
 * tiles (zeros past n and d). */
size_t lnx_amx_keys_bytes(int64_t n, int64_t d);
void lnx_amx_pack_keys(const uint16_t *X, int64_t ldx, int64_t n, int64_t d, uint16_t *dst);

/* Values X [n][d] packed for O = P X: per 32 columns of d, ceil32(n) / 32 steps of two tiles
 * (zeros past n and d), the layout lnx_amx_packed reads. */
size_t lnx_amx_values_bytes(int64_t n, int64_t d);
void lnx_amx_pack_values(const uint16_t *X, int64_t ldx, int64_t n, int64_t d, uint16_t *dst);

/* S[r][16 (g - g0) + c] = sum_k Q[r][k] X[16 g + c][k] for r < rows (a multiple of 16) and key
 * groups g0 <= g < g1 of keys packed by lnx_amx_pack_keys (steps = ceil32(d) / 32). Q: bf16 rows of
 * stride ldq, zero past d up to 32 steps. S: float32, row stride lds >= 16 (g1 - g0). */
void lnx_amx_scores(const uint16_t *Q, int64_t ldq, int64_t rows, const uint16_t *Kp, int64_t steps, int64_t g0,
                    int64_t g1, float *S, int64_t lds);

/* C[r][c] = sum_k A[r][k] X[32 s0 + k][c] for r < rows, c < ncols (both multiples of 32) and
 * k < 32 ns, with X packed by lnx_amx_pack_values (bsteps = its ceil32(n) / 32 steps). A: bf16
 * rows of stride lda, C: float32 rows of stride ldc. */
void lnx_amx_packed(const uint16_t *A, int64_t lda, int64_t rows, const uint16_t *Bp, int64_t bsteps, int64_t s0,
                    int64_t ns, int64_t ncols, float *C, int64_t ldc);

#endif
