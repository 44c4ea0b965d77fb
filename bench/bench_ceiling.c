#include "bench_ceiling.h"

#include <cblas.h>
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef LNX_HAVE_ONEDNN
#include <dnnl.h>
#include <omp.h>
#endif

#include "base/alloc.h"
#include "base/cpu.h"
#include "base/half.h"
#include "kernels/gemm.h"
#include "kernels/quant.h"

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fill_floats(float *p, size_t n)
{
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)(s >> 9) * (1.0f / 8388608.0f) - 0.5f;
    }
}

/* ---- streaming read of given regions ---- */

typedef struct region_ctx {
    const stream_region *r;
    int n, workers, streams, avx512;
    uint64_t read[64]; /* bytes each worker read */
    float sink[64];
} region_ctx;

#define RCHUNK 4096 /* bytes per stream step */

__attribute__((target("avx2")))
static float chunk_avx2(const uint8_t *p)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int i = 0; i < RCHUNK; i += 128) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps((const float *)(p + i)));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps((const float *)(p + i + 32)));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps((const float *)(p + i + 64)));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps((const float *)(p + i + 96)));
    }
    float out[8];
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    return out[0] + out[7];
}

__attribute__((target("avx512f")))
static float chunk_avx512(const uint8_t *p)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int i = 0; i < RCHUNK; i += 256) {
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps((const float *)(p + i)));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps((const float *)(p + i + 64)));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps((const float *)(p + i + 128)));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps((const float *)(p + i + 192)));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

static float chunk_scalar(const uint8_t *p)
{
    float s = 0;
    for (int i = 0; i < RCHUNK; i += 64) {
        float v;
        memcpy(&v, p + i, sizeof v);
        s += v;
    }
    return s;
}

/* Worker w reads its share of every region: the share cut into `streams` equal parts read
 * chunk by chunk in turn (interleaved streams, as a product reads several weight rows). */
static void region_part(void *p, int64_t begin, int64_t end, int worker)
{
    region_ctx *c = p;
    uint64_t flags = lnx_cpu_flags();
    float (*chunk)(const uint8_t *) = c->avx512 ? chunk_avx512 : (flags & LNX_CPU_AVX2) ? chunk_avx2 : chunk_scalar;
    for (int64_t w = begin; w < end; w++) {
        float s = 0;
        uint64_t done = 0;
        for (int i = 0; i < c->n; i++) {
            uint64_t share = c->r[i].bytes / (uint64_t)c->workers;
            uint64_t part = share / (uint64_t)c->streams / RCHUNK * RCHUNK;
            const uint8_t *base = (const uint8_t *)c->r[i].data + (uint64_t)w * share;
            for (uint64_t o = 0; o < part; o += RCHUNK)
                for (int k = 0; k < c->streams; k++)
                    s += chunk(base + (uint64_t)k * part + o);
            done += part * (uint64_t)c->streams;
        }
        c->read[worker] += done;
        c->sink[worker] += s;
    }
}

double ceiling_stream_regions(lnx_pool *pool, const stream_region *r, int n, int reps)
{
    static const int streams[] = { 1, 4, 8 };
    int workers = lnx_pool_size(pool);
    if (workers > 64)
        workers = 64;
    int isas = (lnx_cpu_flags() & LNX_CPU_AVX512) ? 2 : 1;
    double best = 0;
    for (int isa = 0; isa < isas; isa++)
        for (size_t v = 0; v < sizeof streams / sizeof streams[0]; v++) {
            for (int rep = 0; rep <= reps; rep++) { /* rep 0 warms the pages */
                region_ctx c;
                memset(&c, 0, sizeof c);
                c.r = r;
                c.n = n;
                c.workers = workers;
                c.streams = streams[v];
                c.avx512 = isa == 1;
                double t0 = bench_now();
                lnx_parallel_for(pool, workers, region_part, &c);
                double t = bench_now() - t0;
                uint64_t bytes = 0;
                for (int w = 0; w < workers; w++)
                    bytes += c.read[w];
                if (rep > 0 && t > 0 && (double)bytes / t > best)
                    best = (double)bytes / t;
            }
        }
    return best;
}

double ceiling_stream_read(lnx_pool *pool, uint64_t bytes, int reps)
{
    void *buf = lnx_amalloc((size_t)bytes);
    if (!buf)
        return 0;
    memset(buf, 0, (size_t)bytes); /* touched: no shared zero page */
    stream_region r = { buf, bytes };
    double rate = ceiling_stream_regions(pool, &r, 1, reps);
    lnx_afree(buf);
    return rate;
}

/* ---- BF16 dot products ---- */

#define DOT_ITERS 2000000

typedef struct spin_ctx {
    double flop[64];
    float sink[64];
} spin_ctx;

__attribute__((target("avx512f,avx512bf16")))
static float bf16_spin(void)
{
    __m512 acc[12];
    for (int i = 0; i < 12; i++)
        acc[i] = _mm512_set1_ps((float)i);
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3c00);
    for (long it = 0; it < DOT_ITERS; it++) {
        for (int i = 0; i < 12; i++)
            acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
        __asm__ volatile("" : "+v"(a), "+v"(b));
    }
    __m512 s = acc[0];
    for (int i = 1; i < 12; i++)
        s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

static void bf16_part(void *p, int64_t begin, int64_t end, int worker)
{
    spin_ctx *c = p;
    for (int64_t i = begin; i < end; i++) {
        c->sink[worker] += bf16_spin();
        c->flop[worker] += (double)DOT_ITERS * 12 * 32 * 2;
    }
}

static double spin_rate(lnx_pool *pool, lnx_range_fn fn)
{
    int w = lnx_pool_size(pool);
    double best = 0;
    for (int r = 0; r < 3; r++) {
        spin_ctx c;
        memset(&c, 0, sizeof c);
        double t0 = bench_now();
        lnx_parallel_for(pool, w, fn, &c);
        double t = bench_now() - t0, flop = 0;
        for (int i = 0; i < w && i < 64; i++)
            flop += c.flop[i];
        if (flop / t > best)
            best = flop / t;
    }
    return best;
}

double ceiling_bf16_dot(lnx_pool *pool)
{
    if (!(lnx_cpu_flags() & LNX_CPU_AVX512BF16))
        return 0;
    return spin_rate(pool, bf16_part);
}

/* ---- int8 dot products (the quantized kernels' step: 32 u8 x s8 products into s32 lanes) ---- */

#define I8_ITERS 1000000

/* Eight independent steps (u8 x s8 pairs into s16, pairs summed into s32, added) per round,
 * written in assembly: compiled from intrinsics, the accumulators went through the stack (a
 * store-forwarding chain) or the products were computed once and added eight times, and either
 * way the "peak" measured the compiler. */
__attribute__((target("avx2")))
static int i8_spin_avx2(void)
{
    int32_t out[8];
    long n = I8_ITERS;
    __asm__ volatile(
        "vpxor %%xmm0, %%xmm0, %%xmm0\n\t"
        "vmovdqa %%ymm0, %%ymm1\n\t"
        "vmovdqa %%ymm0, %%ymm2\n\t"
        "vmovdqa %%ymm0, %%ymm3\n\t"
        "vmovdqa %%ymm0, %%ymm4\n\t"
        "vmovdqa %%ymm0, %%ymm5\n\t"
        "vmovdqa %%ymm0, %%ymm6\n\t"
        "vmovdqa %%ymm0, %%ymm7\n\t"
        "vpcmpeqw %%ymm15, %%ymm15, %%ymm15\n\t"
        "vpsrlw $15, %%ymm15, %%ymm15\n\t" /* int16 ones */
        "vpsllw $1, %%ymm15, %%ymm12\n\t"  /* bytes 2, 0 */
        "vpsubb %%ymm15, %%ymm0, %%ymm13\n\t" /* bytes -1, 0 */
        "1:\n\t"
        "vpmaddubsw %%ymm13, %%ymm12, %%ymm8\n\t"
        "vpmaddwd %%ymm15, %%ymm8, %%ymm8\n\t"
        "vpaddd %%ymm8, %%ymm0, %%ymm0\n\t"
        "vpmaddubsw %%ymm13, %%ymm12, %%ymm9\n\t"
        "vpmaddwd %%ymm15, %%ymm9, %%ymm9\n\t"
        "vpaddd %%ymm9, %%ymm1, %%ymm1\n\t"
        "vpmaddubsw %%ymm13, %%ymm12, %%ymm10\n\t"
        "vpmaddwd %%ymm15, %%ymm10, %%ymm10\n\t"
        "vpaddd %%ymm10, %%ymm2, %%ymm2\n\t"
        "vpmaddubsw %%ymm13, %%ymm12, %%ymm11\n\t"
        "vpmaddwd %%ymm15, %%ymm11, %%ymm11\n\t"
        "vpaddd %%ymm11, %%ymm3, %%ymm3\n\t"
        "vpmaddubsw %%ymm13, %%ymm12, %%ymm8\n\t"
        "vpmaddwd %%ymm15, %%ymm8, %%ymm8\n\t"
        "vpaddd %%ymm8, %%ymm4, %%ymm4\n\t"
        "vpmaddubsw %%ymm13, %%ymm12, %%ymm9\n\t"
        "vpmaddwd %%ymm15, %%ymm9, %%ymm9\n\t"
        "vpaddd %%ymm9, %%ymm5, %%ymm5\n\t"
        "vpmaddubsw %%ymm13, %%ymm12, %%ymm10\n\t"
        "vpmaddwd %%ymm15, %%ymm10, %%ymm10\n\t"
        "vpaddd %%ymm10, %%ymm6, %%ymm6\n\t"
        "vpmaddubsw %%ymm13, %%ymm12, %%ymm11\n\t"
        "vpmaddwd %%ymm15, %%ymm11, %%ymm11\n\t"
        "vpaddd %%ymm11, %%ymm7, %%ymm7\n\t"
        "dec %[n]\n\t"
        "jnz 1b\n\t"
        "vpaddd %%ymm1, %%ymm0, %%ymm0\n\t"
        "vpaddd %%ymm3, %%ymm2, %%ymm2\n\t"
        "vpaddd %%ymm5, %%ymm4, %%ymm4\n\t"
        "vpaddd %%ymm7, %%ymm6, %%ymm6\n\t"
        "vpaddd %%ymm2, %%ymm0, %%ymm0\n\t"
        "vpaddd %%ymm6, %%ymm4, %%ymm4\n\t"
        "vpaddd %%ymm4, %%ymm0, %%ymm0\n\t"
        "vmovdqu %%ymm0, (%[out])\n\t"
        "vzeroupper\n\t"
        : [n] "+r"(n)
        : [out] "r"(out)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
          "xmm12", "xmm13", "xmm15", "memory", "cc");
    return out[0];
}

__attribute__((target("avx2,avx512f,avx512vl,avx512vnni")))
static int i8_spin_vnni(void)
{
    __m256i acc[8];
    for (int i = 0; i < 8; i++)
        acc[i] = _mm256_set1_epi32(i);
    __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2);
    for (long it = 0; it < I8_ITERS; it++) {
        for (int i = 0; i < 8; i++)
            acc[i] = _mm256_dpbusd_epi32(acc[i], a, b);
        __asm__ volatile("" : "+v"(a), "+v"(b));
    }
    __m256i s = acc[0];
    for (int i = 1; i < 8; i++)
        s = _mm256_add_epi32(s, acc[i]);
    return _mm256_extract_epi32(s, 0);
}

static void i8_part(void *p, int64_t begin, int64_t end, int worker)
{
    spin_ctx *c = p;
    const int vnni = lnx_qisa_best() == LNX_QISA_AVX512VNNI;
    for (int64_t i = begin; i < end; i++) {
        c->sink[worker] += (float)(vnni ? i8_spin_vnni() : i8_spin_avx2());
        c->flop[worker] += (double)I8_ITERS * 8 * 32 * 2;
    }
}

static void amx_i8_part(void *p, int64_t begin, int64_t end, int worker);

double ceiling_int8_dot(lnx_pool *pool)
{
    lnx_qisa isa = lnx_qisa_best();
    if (isa == LNX_QISA_AMX) /* lnx_qisa_best asked the OS for the tiles */
        return spin_rate(pool, amx_i8_part);
    if (isa != LNX_QISA_AVX2 && isa != LNX_QISA_AVX512VNNI)
        return 0;
    return spin_rate(pool, i8_part);
}

/* ---- AMX ---- */

#define AMX_ITERS 200000

typedef struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* Full tiles (16 x 64 bytes) back to back: TDPBF16PS, or with int8 TDPBSSD (K = 64 bytes, the
 * instruction's peak; the quantized kernels use half of K per step, one block of 32). */
/* The calling thread's tiles: all eight 16 rows of 64 bytes (the bench's own, as its AMX
 * ceilings are independent of the library's kernels). */
__attribute__((target("amx-tile")))
static void tiles_16x64(void)
{
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    /* GCC does not see ldtilecfg read the struct: keep the stores */
    __asm__ volatile("" : : "r"(&cfg) : "memory");
    _tile_loadconfig(&cfg);
}

__attribute__((target("amx-tile,amx-bf16,amx-int8")))
static void amx_spin(int int8)
{
    tiles_16x64();
    static uint16_t src[16 * 32] __attribute__((aligned(64)));
    _tile_loadd(4, src, 64);
    _tile_loadd(5, src, 64);
    _tile_loadd(6, src, 64);
    _tile_loadd(7, src, 64);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    if (int8) {
        for (long it = 0; it < AMX_ITERS; it++) {
            _tile_dpbssd(0, 4, 6);
            _tile_dpbssd(1, 4, 7);
            _tile_dpbssd(2, 5, 6);
            _tile_dpbssd(3, 5, 7);
        }
    } else {
        for (long it = 0; it < AMX_ITERS; it++) {
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
    }
    _tile_release();
}

static void amx_part(void *p, int64_t begin, int64_t end, int worker)
{
    spin_ctx *c = p;
    for (int64_t i = begin; i < end; i++) {
        amx_spin(0);
        c->flop[worker] += (double)AMX_ITERS * 4 * 16 * 16 * 32 * 2;
    }
}

static void amx_i8_part(void *p, int64_t begin, int64_t end, int worker)
{
    spin_ctx *c = p;
    for (int64_t i = begin; i < end; i++) {
        amx_spin(1);
        c->flop[worker] += (double)AMX_ITERS * 4 * 16 * 16 * 64 * 2;
    }
}

/* Non-zero when the CPU has AMX-BF16 and the OS grants this process the tiles (asked here). */
static int amx_granted(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 22)) || !(d & (1u << 24)))
        return 0;
    /* Linux hands out the AMX tile state only on request (ARCH_REQ_XCOMP_PERM, XTILEDATA) */
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

double ceiling_amx_bf16(lnx_pool *pool)
{
    if (!amx_granted())
        return 0;
    return spin_rate(pool, amx_part);
}

/* ---- independent GEMM ceilings: BLAS and oneDNN's matmul, each threaded by itself ---- */

/* OpenBLAS's thread count, when the BLAS is OpenBLAS (weak: absent with another CBLAS). The
 * benchmark is the host here, and sets it for its own ceiling calls only. */
extern void openblas_set_num_threads(int) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));

typedef struct gemm_bufs {
    float *A, *B, *C;
    uint16_t *Ah, *Bh;
} gemm_bufs;

static void bufs_free(gemm_bufs *g)
{
    lnx_afree(g->A);
    lnx_afree(g->B);
    lnx_afree(g->C);
    lnx_afree(g->Ah);
    lnx_afree(g->Bh);
    memset(g, 0, sizeof *g);
}

static int bufs_alloc(gemm_bufs *g, const gemm_shape *s, int bf16)
{
    memset(g, 0, sizeof *g);
    size_t a = (size_t)(s->M * s->K), b = (size_t)(s->N * s->K);
    g->A = lnx_amalloc(sizeof(float) * a);
    g->B = lnx_amalloc(sizeof(float) * b);
    g->C = lnx_amalloc(sizeof(float) * (size_t)(s->M * s->N));
    if (bf16) {
        g->Ah = lnx_amalloc(2 * a);
        g->Bh = lnx_amalloc(2 * b);
    }
    if (!g->A || !g->B || !g->C || (bf16 && (!g->Ah || !g->Bh))) {
        bufs_free(g);
        return -1;
    }
    fill_floats(g->A, a);
    fill_floats(g->B, b);
    if (bf16) {
        for (size_t i = 0; i < a; i++)
            g->Ah[i] = lnx_f32_to_bf16(g->A[i]);
        for (size_t i = 0; i < b; i++)
            g->Bh[i] = lnx_f32_to_bf16(g->B[i]);
    }
    return 0;
}

static double blas_once(const gemm_shape *s, gemm_bufs *g)
{
    double t0 = bench_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)s->M, (int)s->N, (int)s->K, 1.0f, g->A, (int)s->K, g->B,
                (int)s->K, 0.0f, g->C, (int)s->N);
    return bench_now() - t0;
}

#ifdef LNX_HAVE_ONEDNN
typedef struct dnnl_mm {
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c;
} dnnl_mm;

static void mm_free(dnnl_mm *m)
{
    if (m->a)
        dnnl_memory_destroy(m->a);
    if (m->b)
        dnnl_memory_destroy(m->b);
    if (m->c)
        dnnl_memory_destroy(m->c);
    if (m->prim)
        dnnl_primitive_destroy(m->prim);
    if (m->strm)
        dnnl_stream_destroy(m->strm);
    if (m->eng)
        dnnl_engine_destroy(m->eng);
    memset(m, 0, sizeof *m);
}

/* C[M,N] f32 = A[M,K] x B^T (B stored [N,K] row-major: the matmul's weights [K,N] with strides
 * {1, K}); A and B f32 or bf16. The weights are constant in inference, so they are given to the
 * matmul in the layout it prefers (format `any`), reordered once before the timing: the plain
 * strided B made oneDNN 2.6 repack them on every call, and on a Xeon with AMX its bf16 matmul
 * then ran below the library's own AMX kernel (a ceiling 0.7x what it should be). Falls back to
 * the plain layout if the reorder cannot be made. */
static int mm_create(dnnl_mm *m, const gemm_shape *s, gemm_bufs *g, int bf16)
{
    memset(m, 0, sizeof *m);
    dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t ad, bd, cd, bany;
    dnnl_dims_t adims = { s->M, s->K }, bdims = { s->K, s->N }, cdims = { s->M, s->N };
    dnnl_dims_t astr = { s->K, 1 }, bstr = { 1, s->K }, cstr = { s->N, 1 };
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t plain = NULL;
    void *bdata = bf16 ? (void *)g->Bh : (void *)g->B;
    if (dnnl_engine_create(&m->eng, dnnl_cpu, 0) || dnnl_stream_create(&m->strm, m->eng, dnnl_stream_default_flags) ||
        dnnl_memory_desc_init_by_strides(&ad, 2, adims, dt, astr) ||
        dnnl_memory_desc_init_by_strides(&bd, 2, bdims, dt, bstr) ||
        dnnl_memory_desc_init_by_strides(&cd, 2, cdims, dnnl_f32, cstr) ||
        dnnl_memory_desc_init_by_tag(&bany, 2, bdims, dt, dnnl_format_tag_any))
        goto fail;
    dnnl_matmul_desc_t md;
    if (dnnl_matmul_desc_init(&md, &ad, &bany, NULL, &cd) == dnnl_success &&
        dnnl_primitive_desc_create(&pd, &md, NULL, m->eng, NULL) == dnnl_success) {
        const dnnl_memory_desc_t *bw = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        dnnl_exec_arg_t rargs[2];
        if (bw && dnnl_memory_create(&plain, &bd, m->eng, bdata) == dnnl_success &&
            dnnl_memory_create(&m->b, bw, m->eng, DNNL_MEMORY_ALLOCATE) == dnnl_success &&
            dnnl_reorder_primitive_desc_create(&rpd, &bd, m->eng, bw, m->eng, NULL) == dnnl_success &&
            dnnl_primitive_create(&reorder, rpd) == dnnl_success &&
            dnnl_primitive_create(&m->prim, pd) == dnnl_success) {
            rargs[0] = (dnnl_exec_arg_t){ DNNL_ARG_FROM, plain };
            rargs[1] = (dnnl_exec_arg_t){ DNNL_ARG_TO, m->b };
            if (dnnl_primitive_execute(reorder, m->strm, 2, rargs) != dnnl_success ||
                dnnl_stream_wait(m->strm) != dnnl_success) {
                dnnl_primitive_destroy(m->prim);
                m->prim = NULL;
            }
        }
    }
    if (reorder)
        dnnl_primitive_destroy(reorder);
    if (rpd)
        dnnl_primitive_desc_destroy(rpd);
    if (plain)
        dnnl_memory_destroy(plain);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    pd = NULL;
    if (!m->prim) { /* the plain strided weights */
        if (m->b)
            dnnl_memory_destroy(m->b);
        m->b = NULL;
        if (dnnl_matmul_desc_init(&md, &ad, &bd, NULL, &cd) ||
            dnnl_primitive_desc_create(&pd, &md, NULL, m->eng, NULL) || dnnl_primitive_create(&m->prim, pd) ||
            dnnl_memory_create(&m->b, &bd, m->eng, bdata))
            goto fail;
        dnnl_primitive_desc_destroy(pd);
        pd = NULL;
    }
    if (dnnl_memory_create(&m->a, &ad, m->eng, bf16 ? (void *)g->Ah : (void *)g->A) ||
        dnnl_memory_create(&m->c, &cd, m->eng, g->C))
        goto fail;
    return 0;
fail:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    mm_free(m);
    return -1;
}

static double mm_once(dnnl_mm *m)
{
    dnnl_exec_arg_t args[3] = { { DNNL_ARG_SRC, m->a }, { DNNL_ARG_WEIGHTS, m->b }, { DNNL_ARG_DST, m->c } };
    double t0 = bench_now();
    dnnl_primitive_execute(m->prim, m->strm, 3, args);
    dnnl_stream_wait(m->strm);
    return bench_now() - t0;
}
#endif

/* ---- a plain AMX bf16 GEMM (this file's own, not the library's kernel) ----
 * B packed once into the tile layout before the timing (16 K-pairs x 16 columns per 1 KiB
 * tile); per 32 x 32 block of C, four float32 tiles accumulate over the whole of K (two A tiles
 * read from the row-major bf16 A, two B tiles), stored once. Threads split the columns. It is
 * what oneDNN's matmul would be on AMX without its overheads: on a Xeon with AMX, oneDNN 2.6's
 * bf16 matmul ran below the library's AMX kernel at the prefill shapes. */
/* B columns kept in L2 while A passes: about 1 MiB of them (128 at K 4096), at most 512 */
#define AMX_GEMM_B_BYTES ((int64_t)1 << 20)
#define AMX_GEMM_NB_MAX 512

typedef struct amx_gemm {
    const uint16_t *A, *Bp;
    float *C;
    int64_t M, N, K, Kp, lda;
    int64_t n0, n1;
} amx_gemm;

__attribute__((target("amx-tile,amx-bf16")))
static void amx_gemm_part(const amx_gemm *g)
{
    tiles_16x64();
    const int64_t steps = g->Kp / 32;
    const size_t as = (size_t)g->lda * 2;
    /* NB columns of B (1 MiB) stay in L2 while every 32 rows of A pass: at K 1024 a block of 128
     * would read A four times as often as one of 512 */
    int64_t NB = AMX_GEMM_B_BYTES / (g->Kp * 2) / 32 * 32;
    NB = NB > AMX_GEMM_NB_MAX ? AMX_GEMM_NB_MAX : NB < 32 ? 32 : NB;
    for (int64_t nb = g->n0; nb < g->n1; nb += NB)
        for (int64_t m = 0; m + 32 <= g->M; m += 32)
            for (int64_t n = nb; n < g->n1 && n < nb + NB; n += 32) {
                const uint16_t *b0 = g->Bp + (size_t)(n / 16) * (size_t)steps * 512, *b1 = b0 + (size_t)steps * 512;
                const uint16_t *a = g->A + (size_t)m * (size_t)g->lda;
                _tile_zero(0);
                _tile_zero(1);
                _tile_zero(2);
                _tile_zero(3);
                for (int64_t k = 0; k < steps; k++) {
                    _tile_loadd(4, a + 32 * k, as);
                    _tile_loadd(5, a + 16 * g->lda + 32 * k, as);
                    _tile_loadd(6, b0 + 512 * k, 64);
                    _tile_loadd(7, b1 + 512 * k, 64);
                    _tile_dpbf16ps(0, 4, 6);
                    _tile_dpbf16ps(1, 4, 7);
                    _tile_dpbf16ps(2, 5, 6);
                    _tile_dpbf16ps(3, 5, 7);
                }
                float *c = g->C + (size_t)m * (size_t)g->N + (size_t)n;
                const size_t cs = (size_t)g->N * 4;
                _tile_stored(0, c, cs);
                _tile_stored(1, c + 16, cs);
                _tile_stored(2, c + 16 * g->N, cs);
                _tile_stored(3, c + 16 * g->N + 16, cs);
            }
    _tile_release();
}

static void *amx_gemm_thread(void *p)
{
    amx_gemm_part(p);
    return NULL;
}

/* Seconds of C[M, N] = A B^T on AMX tiles, with `threads` threads (shapes rounded up to
 * multiples of 32; the FLOP counted are the shape's own). B is packed before the timing. */
static double amx_gemm_once(const gemm_shape *s, int threads, int reps)
{
    const int64_t M = (s->M + 31) / 32 * 32, N = (s->N + 31) / 32 * 32, Kp = (s->K + 31) / 32 * 32;
    /* A's rows one cache line longer than K: rows 8 KiB apart (K 4096) would put the 16 rows of a
     * tile load in the same L1 sets (the library's AMX kernel pads its rows the same way and ran
     * up to 1.10x this GEMM while it did not) */
    const int64_t lda = Kp + 32;
    uint16_t *A = lnx_amalloc((size_t)M * (size_t)lda * 2), *Bp = lnx_amalloc((size_t)N * (size_t)Kp * 2);
    float *C = lnx_amalloc((size_t)M * (size_t)N * 4);
    double best = -1;
    if (!A || !Bp || !C)
        goto done;
    for (size_t i = 0; i < (size_t)M * (size_t)lda; i++)
        A[i] = (uint16_t)(0x3c00u + (i * 2654435761u >> 24) % 256u); /* bf16 values near 0.01 */
    for (size_t i = 0; i < (size_t)N * (size_t)Kp; i++)
        Bp[i] = (uint16_t)(0x3c00u + (i * 40503u >> 8) % 256u);
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
    amx_gemm parts[64];
    pthread_t tid[64];
    int64_t cols = N / 32;
    for (int t = 0; t < threads; t++)
        parts[t] = (amx_gemm){ A, Bp, C, M, N, s->K, Kp, lda, 32 * (cols * t / threads), 32 * (cols * (t + 1) / threads) };
    for (int r = 0; r <= reps; r++) { /* the first run warms up */
        double t0 = bench_now();
        int started = 0;
        for (int t = 1; t < threads; t++)
            started += pthread_create(&tid[t], NULL, amx_gemm_thread, &parts[t]) == 0;
        if (started != threads - 1) { /* no thread: no figure */
            for (int t = 1; t <= started; t++)
                pthread_join(tid[t], NULL);
            best = -1;
            break;
        }
        amx_gemm_part(&parts[0]);
        for (int t = 1; t < threads; t++)
            pthread_join(tid[t], NULL);
        double dt = bench_now() - t0;
        if (r > 0 && (best < 0 || dt < best))
            best = dt;
    }
done:
    lnx_afree(A);
    lnx_afree(Bp);
    lnx_afree(C);
    return best;
}

double ceiling_gemm(int backend, int bf16, const gemm_shape *shapes, int n, int reps, int threads)
{
    double flop = 0, secs = 0;
#ifdef LNX_HAVE_ONEDNN
    int omp_saved = omp_get_max_threads();
    omp_set_num_threads(threads);
#endif
    int blas_saved = openblas_get_num_threads ? openblas_get_num_threads() : 0;
    if (openblas_set_num_threads)
        openblas_set_num_threads(threads);
    for (int i = 0; i < n && secs >= 0; i++) {
        const gemm_shape *s = &shapes[i];
        if (backend == CEIL_AMX) {
            double t = bf16 && amx_granted() ? amx_gemm_once(s, threads, reps) : -1;
            if (t <= 0) {
                secs = -1;
                break;
            }
            flop += 2.0 * (double)s->M * (double)s->N * (double)s->K * (double)s->count;
            secs += t * (double)s->count;
            continue;
        }
        gemm_bufs g;
        if ((backend == CEIL_BLAS && bf16) || bufs_alloc(&g, s, bf16)) {
            secs = -1;
            break;
        }
        double best = 1e30;
        if (backend == CEIL_BLAS) {
            for (int r = 0; r <= reps; r++) { /* the first call warms up */
                double t = blas_once(s, &g);
                if (r > 0 && t < best)
                    best = t;
            }
        } else {
#ifdef LNX_HAVE_ONEDNN
            dnnl_mm m;
            if (mm_create(&m, s, &g, bf16) == 0) {
                for (int r = 0; r <= reps; r++) {
                    double t = mm_once(&m);
                    if (r > 0 && t < best)
                        best = t;
                }
                mm_free(&m);
            }
#endif
        }
        bufs_free(&g);
        if (best >= 1e30) {
            secs = -1;
            break;
        }
        flop += 2.0 * (double)s->M * (double)s->N * (double)s->K * (double)s->count;
        secs += best * (double)s->count;
    }
    if (openblas_set_num_threads && blas_saved > 0)
        openblas_set_num_threads(blas_saved);
#ifdef LNX_HAVE_ONEDNN
    omp_set_num_threads(omp_saved);
#endif
    return secs > 0 ? flop / secs : 0;
}

/* ---- float32 FMA instruction peak ---- */

#define FMA_ITERS 4000000

__attribute__((target("avx512f")))
static float fma_spin_avx512(void)
{
    __m512 acc[12];
    for (int i = 0; i < 12; i++)
        acc[i] = _mm512_set1_ps((float)i);
    __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-7f);
    for (long it = 0; it < FMA_ITERS; it++) {
        for (int i = 0; i < 12; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], a, b);
        __asm__ volatile("" : "+v"(a), "+v"(b));
    }
    __m512 s = acc[0];
    for (int i = 1; i < 12; i++)
        s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma")))
static float fma_spin_avx2(void)
{
    __m256 acc[12];
    for (int i = 0; i < 12; i++)
        acc[i] = _mm256_set1_ps((float)i);
    __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-7f);
    for (long it = 0; it < FMA_ITERS; it++) {
        for (int i = 0; i < 12; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], a, b);
        __asm__ volatile("" : "+x"(a), "+x"(b));
    }
    __m256 s = acc[0];
    for (int i = 1; i < 12; i++)
        s = _mm256_add_ps(s, acc[i]);
    float o[8];
    _mm256_storeu_ps(o, s);
    return o[0] + o[7];
}

static void fma512_part(void *p, int64_t begin, int64_t end, int worker)
{
    spin_ctx *c = p;
    for (int64_t i = begin; i < end; i++) {
        c->sink[worker] += fma_spin_avx512();
        c->flop[worker] += (double)FMA_ITERS * 12 * 16 * 2;
    }
}

static void fma256_part(void *p, int64_t begin, int64_t end, int worker)
{
    spin_ctx *c = p;
    for (int64_t i = begin; i < end; i++) {
        c->sink[worker] += fma_spin_avx2();
        c->flop[worker] += (double)FMA_ITERS * 12 * 8 * 2;
    }
}

double ceiling_fma_peak(lnx_pool *pool, int avx512)
{
    /* the CPU's own features, not the library's (possibly masked) dispatch */
    __builtin_cpu_init();
    if (avx512)
        return __builtin_cpu_supports("avx512f") ? spin_rate(pool, fma512_part) : 0;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? spin_rate(pool, fma256_part) : 0;
}
