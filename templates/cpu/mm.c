/* kfuse standard CPU GEMM template: C[b] = A[b] @ B[b] with fused prologues
 * and epilogues. The code generator defines, per matmul instance,
 *   KF_MM_FN                 name of the kernel: static void KF_MM_FN(void **B)
 *   KF_MM_T, KF_MM_T_IS_DOUBLE  accumulation type (float or double)
 *   KF_MM_BATCH, KF_MM_M, KF_MM_N, KF_MM_K   int64 sizes, any value >= 0
 *   KF_MM_LOAD_A(B, b, m, k), KF_MM_LOAD_B(B, b, k, n)   operand value, prologue applied
 *   KF_MM_STORE(B, b, m, n, v)                   epilogue + store of C[b][m][n] = v
 *   KF_MM_A_PTR(B, b), KF_MM_B_PTR(B, b)  optional: plain row-major operand pointers
 * then pastes this text and #undefs them; the text may appear several times in
 * one TU, so file-scope names are either guarded per type or pasted from KF_MM_FN.
 *
 * Indices passed to the macros are int64_t; LOAD/STORE must be pure in them
 * (any order, any thread). Sizes need only be expressions, not literals.
 *
 * Shape (GotoBLAS/BLIS): B is packed per column slab (all of K, prologue applied
 * once), threads packing it together and sharing it; the threads then take row
 * blocks of the slab dynamically, pack MC x KC blocks of A (prologue applied)
 * and run an MR x NR register-blocked micro-kernel over them. Every C element is
 * STOREd exactly once: when K needs several KC blocks the partial sums wait in
 * a per-thread buffer, and the last block's micro-tile goes through the
 * epilogue, row by row in an `omp simd` loop, straight from a small tile.
 * Block sizes can be overridden with -D for tuning (see KF_MM_KC below). */

#ifndef KF_RESTRICT
#define KF_RESTRICT __restrict__
#endif

#ifndef KF_MM_COMMON
#define KF_MM_COMMON
#define KF_MM_CAT2(a, b) a##b
#define KF_MM_CAT(a, b) KF_MM_CAT2(a, b)
/* Micro-tile: MR rows x NV vectors. MR*NV accumulators + NV B vectors + one
 * broadcast must fit the register file (16 ymm for AVX2, 32 zmm for AVX-512). */
#if defined(__AVX512F__)
#define KF_MM_VBYTES 64
#define KF_MM_MR 14
#elif defined(__AVX__)
#define KF_MM_VBYTES 32
#define KF_MM_MR 6
#else
#define KF_MM_VBYTES 16
#define KF_MM_MR 6
#endif
#define KF_MM_NV 2
#ifndef KF_MM_KC
#define KF_MM_KC 256                  /* K block: a B sliver (KC x NR) stays in L1 */
#endif
#ifndef KF_MM_MC_BYTES
#define KF_MM_MC_BYTES (144 * 256 * 4) /* A block (MC x KC) stays in L2 */
#endif
#ifndef KF_MM_SLAB_BYTES
#define KF_MM_SLAB_BYTES (4 << 20)    /* packed B slab (K x NC) stays in L3 */
#endif
#ifndef KF_MM_NC_ACC
#define KF_MM_NC_ACC 1024             /* slab width cap while partial sums are buffered */
#endif
#define KF_MM_PAR_FLOPS (64 * 64 * 64) /* below this, one thread */
#endif

#if KF_MM_T_IS_DOUBLE
#define KF_MM_SFX d
#else
#define KF_MM_SFX f
#endif
#define KF_MM_V KF_MM_CAT(kf_mm_v, KF_MM_SFX)
#define KF_MM_VU KF_MM_CAT(kf_mm_vu, KF_MM_SFX)
#define KF_MM_UKR KF_MM_CAT(kf_mm_ukr_, KF_MM_SFX)
#define KF_MM_VL ((int)(KF_MM_VBYTES / sizeof(KF_MM_T)))
#define KF_MM_NR (KF_MM_NV * KF_MM_VL)

#if KF_MM_T_IS_DOUBLE ? !defined(KF_MM_COMMON_D) : !defined(KF_MM_COMMON_F)
#if KF_MM_T_IS_DOUBLE
#define KF_MM_COMMON_D
#else
#define KF_MM_COMMON_F
#endif
typedef KF_MM_T KF_MM_V __attribute__((vector_size(KF_MM_VBYTES)));
typedef KF_MM_T KF_MM_VU __attribute__((vector_size(KF_MM_VBYTES), aligned(sizeof(KF_MM_T))));

/* cout = (cin ? cin : 0) + a @ b over kc steps. a: kc x MR packed, b: kc x NR
 * packed (64-byte aligned), cin/cout: MR x NR row-major tiles. The constant
 * loops unroll completely and the accumulators live in registers. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("fp-contract=fast"))) /* FMA even under -std=c17 (ISO mode: off) */
#endif
static inline void KF_MM_UKR(int64_t kc, const KF_MM_T *KF_RESTRICT a, const KF_MM_T *KF_RESTRICT b,
                             const KF_MM_T *cin, KF_MM_T *cout)
{
#ifdef __clang__
#pragma clang fp contract(fast)
#endif
    KF_MM_V c[KF_MM_MR][KF_MM_NV];
    for (int i = 0; i < KF_MM_MR; i++)
        for (int j = 0; j < KF_MM_NV; j++)
            c[i][j] = cin ? *(const KF_MM_VU *)(cin + i * KF_MM_NR + j * KF_MM_VL) : (KF_MM_V){0};
    for (int64_t k = 0; k < kc; k++, a += KF_MM_MR, b += KF_MM_NR) {
        KF_MM_V bv[KF_MM_NV];
        for (int j = 0; j < KF_MM_NV; j++)
            bv[j] = *(const KF_MM_V *)(b + j * KF_MM_VL);
        for (int i = 0; i < KF_MM_MR; i++)
            for (int j = 0; j < KF_MM_NV; j++)
                c[i][j] += a[i] * bv[j];
    }
    for (int i = 0; i < KF_MM_MR; i++)
        for (int j = 0; j < KF_MM_NV; j++)
            *(KF_MM_VU *)(cout + i * KF_MM_NR + j * KF_MM_VL) = c[i][j];
}
#endif

#ifdef KF_MM_B_PTR
#define KF_MM_LB(k, n) b_ptr[(k) * (int64_t)KF_MM_N + (n)]
#else
#define KF_MM_LB(k, n) KF_MM_LOAD_B(B, b, k, n)
#endif

/* Packs rows [m0, m0 + mr) x cols [k0, k0 + kc) of A[b] as one kc x MR
 * micro-panel; rows past M are zero. The inner loop walks k, A's contiguous index. */
static inline void KF_MM_CAT(KF_MM_FN, _pack_a)(void **B, int64_t b, int64_t m0, int mr, int64_t k0,
                                                int64_t kc, KF_MM_T *KF_RESTRICT dst)
{
#ifdef KF_MM_A_PTR
    const KF_MM_T *KF_RESTRICT a_ptr = KF_MM_A_PTR(B, b);
    /* Each row is a short stream that the hardware prefetches late, so fetch
     * the next panel's row a line at a time while this one is copied. */
    enum { LINE = 64 / sizeof(KF_MM_T) };
    for (int i = 0; i < mr; i++) {
        const int64_t pf = m0 + KF_MM_MR + i < KF_MM_M ? m0 + KF_MM_MR + i : m0 + i;
        int64_t k = 0;
        for (; k + LINE <= kc; k += LINE) {
            __builtin_prefetch(&a_ptr[pf * KF_MM_K + k0 + k]);
            for (int kk = 0; kk < LINE; kk++)
                dst[(k + kk) * KF_MM_MR + i] = a_ptr[(m0 + i) * KF_MM_K + k0 + k + kk];
        }
        for (; k < kc; k++)
            dst[k * KF_MM_MR + i] = a_ptr[(m0 + i) * KF_MM_K + k0 + k];
    }
#else
    for (int i = 0; i < mr; i++)
        for (int64_t k = 0; k < kc; k++)
            dst[k * KF_MM_MR + i] = KF_MM_LOAD_A(B, b, m0 + i, k0 + k);
#endif
    for (int i = mr; i < KF_MM_MR; i++)
        for (int64_t k = 0; k < kc; k++)
            dst[k * KF_MM_MR + i] = 0;
}

/* Packs NR-wide micro-panels [p0, p1) of the slab starting at column j0, all of
 * K, in K blocks: the block of rows [k0, k0 + kc) starts at k0*ncp and holds its
 * panels one after another, each kc x NR. Row by row, so the inner loop walks
 * n, B's contiguous index. */
static inline void KF_MM_CAT(KF_MM_FN, _pack_b)(void **B, int64_t b, int64_t j0, int64_t ncp,
                                                int64_t p0, int64_t p1, int64_t kcb, KF_MM_T *KF_RESTRICT bs)
{
#ifdef KF_MM_B_PTR
    const KF_MM_T *KF_RESTRICT b_ptr = KF_MM_B_PTR(B, b);
#endif
    (void)B;
    (void)b;
    for (int64_t k0 = 0; k0 < KF_MM_K; k0 += kcb) {
        const int64_t kc = KF_MM_K - k0 < kcb ? KF_MM_K - k0 : kcb;
        KF_MM_T *blk = bs + k0 * ncp;
        for (int64_t k = 0; k < kc; k++)
            for (int64_t p = p0; p < p1; p++) {
                KF_MM_T *KF_RESTRICT d = blk + (p * kc + k) * KF_MM_NR;
                const int64_t n0 = j0 + p * KF_MM_NR;
                if (n0 + KF_MM_NR <= KF_MM_N) {
#pragma omp simd
                    for (int j = 0; j < KF_MM_NR; j++)
                        d[j] = KF_MM_LB(k0 + k, n0 + j);
                } else {
                    for (int j = 0; j < KF_MM_NR; j++)
                        d[j] = n0 + j < KF_MM_N ? KF_MM_LB(k0 + k, n0 + j) : 0;
                }
            }
    }
}

/* Epilogue of one finished micro-tile: mr x nr valid elements at (m0, n0). */
static inline void KF_MM_CAT(KF_MM_FN, _store)(void **B, int64_t b, int64_t m0, int64_t n0, int mr, int nr,
                                               const KF_MM_T *KF_RESTRICT t)
{
    (void)B;
    if (nr == KF_MM_NR) {
        for (int i = 0; i < mr; i++) {
#pragma omp simd
            for (int j = 0; j < KF_MM_NR; j++)
                KF_MM_STORE(B, b, m0 + i, n0 + j, t[i * KF_MM_NR + j]);
        }
    } else {
        for (int i = 0; i < mr; i++) {
#pragma omp simd
            for (int j = 0; j < nr; j++)
                KF_MM_STORE(B, b, m0 + i, n0 + j, t[i * KF_MM_NR + j]);
        }
    }
}

/* One work item of a packed slab: row panels [ip0, ip1) (MR rows each) x column
 * panels [jp0, jp1) of the slab at column j0 (ncp columns, padded), in row
 * blocks of at most mcp panels. ap (the calling thread's) holds an MC x KC
 * block of A; acc the partial sums of mcp x (jp1 - jp0) tiles. */
static inline void KF_MM_CAT(KF_MM_FN, _block)(void **B, int64_t b, const KF_MM_T *bs, int64_t j0, int64_t ncp,
                                               int64_t ip0, int64_t ip1, int64_t jp0, int64_t jp1, int64_t mcp,
                                               int64_t kcb, KF_MM_T *ap, KF_MM_T *acc)
{
    enum { TILE = KF_MM_MR * KF_MM_NR };
    KF_MM_T tile[KF_MM_MR * KF_MM_NR] __attribute__((aligned(64)));
    const int64_t nip = ip1 - ip0;
    if (nip <= 0 || jp1 <= jp0)
        return;
    /* Even row blocks of at most mcp panels. */
    const int64_t nmb = (nip + mcp - 1) / mcp, bp = (nip + nmb - 1) / nmb;
    for (int64_t ib = ip0; ib < ip1; ib += bp) {
        const int64_t ie = ib + bp < ip1 ? ib + bp : ip1;
        for (int64_t k0 = 0; k0 < KF_MM_K; k0 += kcb) {
            const int64_t kc = KF_MM_K - k0 < kcb ? KF_MM_K - k0 : kcb;
            const int first = k0 == 0, last = k0 + kc >= KF_MM_K;
            for (int64_t ip = ib; ip < ie; ip++) {
                const int64_t m0 = ip * KF_MM_MR;
                const int mr = KF_MM_M - m0 < KF_MM_MR ? (int)(KF_MM_M - m0) : KF_MM_MR;
                KF_MM_CAT(KF_MM_FN, _pack_a)(B, b, m0, mr, k0, kc, ap + (ip - ib) * kc * KF_MM_MR);
            }
            const KF_MM_T *blk = bs + k0 * ncp;
            if (first && last) {
                /* One K block: the GEMM is cheap next to its epilogue's
                 * traffic, so sweep each row panel across the slab: the
                 * epilogue then streams along MR rows, not along every row
                 * of the block at once (too many streams to prefetch). */
                for (int64_t ip = ib; ip < ie; ip++) {
                    const KF_MM_T *a = ap + (ip - ib) * kc * KF_MM_MR;
                    const int64_t m0 = ip * KF_MM_MR;
                    const int mr = KF_MM_M - m0 < KF_MM_MR ? (int)(KF_MM_M - m0) : KF_MM_MR;
                    for (int64_t jp = jp0; jp < jp1; jp++) {
                        const int64_t n0 = j0 + jp * KF_MM_NR;
                        const int nr = KF_MM_N - n0 < KF_MM_NR ? (int)(KF_MM_N - n0) : KF_MM_NR;
                        KF_MM_UKR(kc, a, blk + jp * kc * KF_MM_NR, NULL, tile);
                        KF_MM_CAT(KF_MM_FN, _store)(B, b, m0, n0, mr, nr, tile);
                    }
                }
                continue;
            }
            for (int64_t jp = jp0; jp < jp1; jp++) {
                const KF_MM_T *bpan = blk + jp * kc * KF_MM_NR;
                const int64_t n0 = j0 + jp * KF_MM_NR;
                const int nr = KF_MM_N - n0 < KF_MM_NR ? (int)(KF_MM_N - n0) : KF_MM_NR;
                for (int64_t ip = ib; ip < ie; ip++) {
                    const KF_MM_T *a = ap + (ip - ib) * kc * KF_MM_MR;
                    KF_MM_T *c = acc + ((jp - jp0) * mcp + (ip - ib)) * TILE;
                    if (!last) {
                        KF_MM_UKR(kc, a, bpan, first ? NULL : c, c);
                    } else {
                        const int64_t m0 = ip * KF_MM_MR;
                        const int mr = KF_MM_M - m0 < KF_MM_MR ? (int)(KF_MM_M - m0) : KF_MM_MR;
                        KF_MM_UKR(kc, a, bpan, first ? NULL : c, tile);
                        KF_MM_CAT(KF_MM_FN, _store)(B, b, m0, n0, mr, nr, tile);
                    }
                }
            }
        }
    }
}

static void KF_MM_FN(void **B)
{
    typedef KF_MM_T T;
    const int64_t M = KF_MM_M, N = KF_MM_N, K = KF_MM_K, NB = KF_MM_BATCH;
    const int64_t MR = KF_MM_MR, NR = KF_MM_NR;
    if (M <= 0 || N <= 0 || NB <= 0)
        return;

    /* Blocking: K in even blocks of at most KC; N in even slabs whose packed B
     * fits the slab budget; M blocks of mcp row panels. */
    const int64_t nkb = (K + KF_MM_KC - 1) / KF_MM_KC, kcb = nkb ? (K + nkb - 1) / nkb : 1;
    const int64_t npan = (N + NR - 1) / NR, mpan = (M + MR - 1) / MR;
    int64_t spw = K ? KF_MM_SLAB_BYTES / ((int64_t)sizeof(T) * K * NR) : npan; /* slab width, panels */
    if (nkb > 1 && spw > KF_MM_NC_ACC / NR)
        spw = KF_MM_NC_ACC / NR;
    spw = spw < 1 ? 1 : spw > npan ? npan : spw;
    const int64_t nslab = (npan + spw - 1) / spw;
    spw = (npan + nslab - 1) / nslab;
    const int64_t ncs = spw * NR;
    int64_t mcp = KF_MM_MC_BYTES / ((int64_t)sizeof(T) * (kcb < KF_MM_KC ? KF_MM_KC : kcb) * MR);
    mcp = mcp < 1 ? 1 : mcp;

    const double flops = 2.0 * M * N * K * NB;
    int nt = flops < KF_MM_PAR_FLOPS ? 1 : omp_get_max_threads();
    if (nt > 1 && flops / nt < KF_MM_PAR_FLOPS)
        nt = (int)(flops / KF_MM_PAR_FLOPS) + 1;
    /* Whole batch instances per thread when that balances; else split each one. */
    const int by_batch = nt > 1 && NB >= nt && (NB % nt == 0 || NB >= 4 * nt);

    /* One allocation: the shared slab (or one per thread by batch), then per
     * thread an A block and, when K has several blocks, the partial sums. */
    const size_t slab = (size_t)(K ? K : 1) * ncs, ablk = (size_t)mcp * MR * kcb;
    const size_t accn = nkb > 1 ? (size_t)mcp * MR * ncs : 0;
#define KF_MM_UP(x) (((x) + 15) & ~(size_t)15) /* keeps each part 64-byte aligned */
    const size_t per_thread = KF_MM_UP(ablk) + KF_MM_UP(accn) + (by_batch ? KF_MM_UP(slab) : 0);
    const size_t total = (by_batch ? 0 : KF_MM_UP(slab)) + per_thread * nt;
#undef KF_MM_UP
    T *mem = K ? (T *)aligned_alloc(64, (total * sizeof(T) + 63) & ~(size_t)63) : NULL;
    if (!mem) {
        /* K == 0, or no memory: plain loops, still each element stored once. */
#pragma omp parallel for num_threads(nt) if (nt > 1)
        for (int64_t bm = 0; bm < NB * M; bm++) {
            const int64_t b = bm / M, m = bm % M;
            for (int64_t n = 0; n < N; n++) {
                T v = 0;
                for (int64_t k = 0; k < K; k++)
                    v += KF_MM_LOAD_A(B, b, m, k) * KF_MM_LOAD_B(B, b, k, n);
                KF_MM_STORE(B, b, m, n, v);
            }
        }
        return;
    }

#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
        T *mine = mem + (by_batch ? 0 : (total - per_thread * nt)) + per_thread * tid;
        T *ap = mine, *acc = mine + ((ablk + 15) & ~(size_t)15);
        if (by_batch) {
            T *bs = acc + ((accn + 15) & ~(size_t)15);
#pragma omp for schedule(dynamic, 1)
            for (int64_t b = 0; b < NB; b++)
                for (int64_t s = 0; s < nslab; s++) {
                    const int64_t j0 = s * ncs, np = (npan - s * spw) < spw ? npan - s * spw : spw;
                    KF_MM_CAT(KF_MM_FN, _pack_b)(B, b, j0, np * NR, 0, np, kcb, bs);
                    KF_MM_CAT(KF_MM_FN, _block)(B, b, bs, j0, np * NR, 0, mpan, 0, np, mcp, kcb, ap, acc);
                }
        } else {
            /* Work items of a slab: nmb row blocks (a multiple of the thread
             * count, so a quiet machine splits evenly) x nnb column blocks
             * (only when M is too short to split; they repeat A's packing),
             * handed out dynamically so a busy core does not hold up the other. */
            int64_t nmb = (mpan + mcp - 1) / mcp, nnb = 1;
            nmb = (nmb + nth - 1) / nth * nth;
            if (mpan < 4 * nth) {
                nmb = 1;
                nnb = spw < nth ? spw : nth;
            }
            T *bs = mem;
            for (int64_t b = 0; b < NB; b++)
                for (int64_t s = 0; s < nslab; s++) {
                    const int64_t j0 = s * ncs, np = (npan - s * spw) < spw ? npan - s * spw : spw;
                    KF_MM_CAT(KF_MM_FN, _pack_b)(B, b, j0, np * NR, np * tid / nth, np * (tid + 1) / nth, kcb, bs);
#pragma omp barrier
#pragma omp for schedule(dynamic, 1)
                    for (int64_t it = 0; it < nmb * nnb; it++) {
                        const int64_t rb = it / nnb, cb = it % nnb;
                        KF_MM_CAT(KF_MM_FN, _block)(B, b, bs, j0, np * NR, mpan * rb / nmb, mpan * (rb + 1) / nmb,
                                                    np * cb / nnb, np * (cb + 1) / nnb, mcp, kcb, ap, acc);
                    } /* implied barrier: the slab is free to repack */
                }
        }
    }
    free(mem);
}

#undef KF_MM_SFX
#undef KF_MM_V
#undef KF_MM_VU
#undef KF_MM_UKR
#undef KF_MM_VL
#undef KF_MM_NR
#undef KF_MM_LB
