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

/*
 * C[m, n] = (accumulate ? C[m, n] : 0) + sum_k A[m, k] W[n, k] for m < M and
 * n0 <= n < n1, run in the calling thread. A: bf16 [ceil32(M)][lda] with lda >= ceil32(K) and
 * zeros in the padding (rows M.. and columns K .. ceil32(K)); W: bf16 rows of K values, row n at
 * W + n * ldw (the stored weights [N][K]: ldw = K); K even; C float32 with row stride ldc. n0
 * must be a multiple of 32. pack: lnx_amx_pack_bytes() bytes.
 */
void lnx_amx_linear(int64_t M, int64_t N, int64_t K, const uint16_t *A, int64_t lda, const uint16_t *W, int64_t ldw,
                    float *C, int64_t ldc, int64_t n0, int64_t n1, int accumulate, void *pack);

#endif
