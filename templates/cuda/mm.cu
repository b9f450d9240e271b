/* kfuse standard CUDA GEMM template: C[b] = A[b] @ B[b] with fused prologues
 * and epilogues.  The code generator defines, per matmul instance,
 *   KF_MM_FN                   the kernel's name (extern "C" __global__)
 *   KF_MM_TC                   1: tensor cores (f16/bf16 operands, f32
 *                              accumulation), 0: the SIMT kernel (f32, f64)
 *   KF_MM_BF16                 with KF_MM_TC: the operands are bf16, else f16
 *   KF_MM_T                    the accumulation type (float or double)
 *   KF_MM_BATCH, KF_MM_M, KF_MM_N, KF_MM_K   sizes, any value >= 0
 *   KF_MM_LOAD_A(B, b, m, k), KF_MM_LOAD_B(B, b, k, n)  operand value, prologue applied
 *   KF_MM_STORE(B, b, m, n, v)                epilogue + store of C[b][m][n] = v
 *   KF_MM_A_PTR(B, b), KF_MM_B_PTR(B, b)      optional: plain row-major operand
 *                              pointers (uint16_t), 16-byte aligned rows: tiles
 *                              are then staged with cp.async
 *   KF_MM_BM, KF_MM_BN, KF_MM_BK, KF_MM_WM, KF_MM_WN, KF_MM_STAGES   the tile
 *                              configuration (KF_MM_TC only)
 * then pastes this text and #undefs them.  B is the kf_bufs table.
 *
 * Tensor-core kernel: a multistage pipeline of mma.sync.m16n8k16.  A tile
 * (BM x BK) and a B tile (BK x BN) per stage in shared memory, XOR-swizzled in
 * 16-byte chunks so that ldmatrix reads are free of bank conflicts.  Plain
 * operands are copied with cp.async (zero-filled past the edges); an operand
 * with a prologue is loaded into registers a stage ahead, the prologue
 * applied, and stored to shared memory after the tile's math.  The epilogue
 * (KF_MM_DIRECT_EPI, the default) STOREs straight from the accumulator
 * fragments: each quad of lanes covers 8 consecutive columns of a row.  The
 * other variant goes through shared memory (the accumulator tile is written
 * there, then every thread STOREs consecutive columns, fully coalesced); on
 * the H100 it measured slower, since the pass costs more than it saves. */

#ifndef KF_MM_CUDA_COMMON
#define KF_MM_CUDA_COMMON
KF_INLINE uint32_t kf_smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }
KF_INLINE void kf_cp_async16(uint32_t dst, const void *src, bool pred)
{
    int sz = pred ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(sz));
}
KF_INLINE void kf_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> KF_INLINE void kf_cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }
KF_INLINE void kf_ldsm_x4(uint32_t *r, uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
KF_INLINE void kf_ldsm_x4_t(uint32_t *r, uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
template <int BF16> KF_INLINE void kf_mma16816(float *c, const uint32_t *a, const uint32_t *b)
{
    /* not volatile: ptxas may interleave the products with other work */
    if (BF16)
        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
                     "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    else
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
                     "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
template <int BF16> KF_INLINE uint32_t kf_pack2(float lo, float hi)
{
    uint16_t l = BF16 ? kf_f2bf(lo) : kf_f2h(lo), h = BF16 ? kf_f2bf(hi) : kf_f2h(hi);
    return (uint32_t)l | ((uint32_t)h << 16);
}
/* Byte offset of 16-byte chunk c of row r in a tile of CH chunks a row. */
template <int CH> KF_INLINE uint32_t kf_swz(int r, int c)
{
    int p = CH >= 8 ? (c ^ (r & 7)) : CH == 4 ? (c ^ ((r >> 1) & 3)) : CH == 2 ? (c ^ ((r >> 2) & 1)) : c;
    return (uint32_t)((r * CH + p) * 16);
}
/* Tiles in grouped order, so that consecutive blocks share A rows in L2. */
KF_INLINE void kf_mm_tile(int pid, int nm, int nn, int *tm, int *tn)
{
    const int G = 8;
    int per = G * nn, grp = pid / per, first = grp * G;
    int gs = nm - first < G ? nm - first : G;
    *tm = first + (pid % per) % gs;
    *tn = (pid % per) / gs;
}
#endif

#define KF_MM_CAT2(a, b) a##b
#define KF_MM_CAT(a, b) KF_MM_CAT2(a, b)

#if KF_MM_TC
/* ---------------------------------------------------------------- tensor cores */
#define KF_MM_NT ((KF_MM_BM / KF_MM_WM) * (KF_MM_BN / KF_MM_WN) * 32)
extern "C" __global__ void __launch_bounds__(KF_MM_NT, 1) KF_MM_FN(const __grid_constant__ kf_bufs B)
{
    enum {
        BM = KF_MM_BM, BN = KF_MM_BN, BK = KF_MM_BK, WM = KF_MM_WM, WN = KF_MM_WN, S = KF_MM_STAGES,
        NT = KF_MM_NT, WARPS_N = BN / WN, MI = WM / 16, NI = WN / 8,
        ACH = BK / 8, BCH = BN / 8,                 /* 16-byte chunks per smem row */
        A_CHUNKS = BM * ACH, B_CHUNKS = BK * BCH,
        A_PER = (A_CHUNKS + NT - 1) / NT, B_PER = (B_CHUNKS + NT - 1) / NT,
        A_BYTES = BM * BK * 2, B_BYTES = BK * BN * 2, STAGE_BYTES = A_BYTES + B_BYTES,
        CPAD = BN + 4
    };
    extern __shared__ __align__(128) unsigned char kf_smem[];
    const int64_t M = KF_MM_M, N = KF_MM_N, K = KF_MM_K;
    const int nm = (int)((M + BM - 1) / BM), nn = (int)((N + BN - 1) / BN);
    int tm, tn;
    kf_mm_tile((int)blockIdx.x, nm, nn, &tm, &tn);
    const int64_t b = blockIdx.y;
    const int64_t m0 = (int64_t)tm * BM, n0 = (int64_t)tn * BN;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm0 = (warp / WARPS_N) * WM, wn0 = (warp % WARPS_N) * WN;
    const uint32_t sbase = kf_smem_u32(kf_smem);
    const int KT = (int)((K + BK - 1) / BK);
#ifdef KF_MM_A_PTR
    const uint16_t *KF_RESTRICT ap = KF_MM_A_PTR(B, b);
#else
    uint4 areg[A_PER];
#endif
#ifdef KF_MM_B_PTR
    const uint16_t *KF_RESTRICT bp = KF_MM_B_PTR(B, b);
#else
    uint4 breg[B_PER];
#endif

    /* global -> shared (cp.async) or -> registers (prologue) for k tile kt */
    auto load_tile = [&](int kt, int stage) {
        const int64_t k0 = (int64_t)kt * BK;
        const uint32_t sa = sbase + stage * STAGE_BYTES, sb = sa + A_BYTES;
#pragma unroll
        for (int i = 0; i < A_PER; i++) {
            int idx = tid + i * NT;
            if (A_CHUNKS % NT == 0 || idx < A_CHUNKS) {
                int r = idx / ACH, ch = idx % ACH;
                int64_t gm = m0 + r, gk = k0 + ch * 8;
#ifdef KF_MM_A_PTR
                bool ok = gm < M && gk < K;
                kf_cp_async16(sa + kf_swz<ACH>(r, ch), ok ? ap + gm * K + gk : ap, ok);
                (void)sb;
#else
                float v[8];
#pragma unroll
                for (int j = 0; j < 8; j++) v[j] = (gm < M && gk + j < K) ? (float)KF_MM_LOAD_A(B, b, gm, gk + j) : 0.0f;
                areg[i] = make_uint4(kf_pack2<KF_MM_BF16>(v[0], v[1]), kf_pack2<KF_MM_BF16>(v[2], v[3]),
                                     kf_pack2<KF_MM_BF16>(v[4], v[5]), kf_pack2<KF_MM_BF16>(v[6], v[7]));
#endif
            }
        }
#pragma unroll
        for (int i = 0; i < B_PER; i++) {
            int idx = tid + i * NT;
            if (B_CHUNKS % NT == 0 || idx < B_CHUNKS) {
                int r = idx / BCH, ch = idx % BCH;
                int64_t gk = k0 + r, gn = n0 + ch * 8;
#ifdef KF_MM_B_PTR
                bool ok = gk < K && gn < N;
                kf_cp_async16(sb + kf_swz<BCH>(r, ch), ok ? bp + gk * N + gn : bp, ok);
#else
                float v[8];
#pragma unroll
                for (int j = 0; j < 8; j++) v[j] = (gk < K && gn + j < N) ? (float)KF_MM_LOAD_B(B, b, gk, gn + j) : 0.0f;
                breg[i] = make_uint4(kf_pack2<KF_MM_BF16>(v[0], v[1]), kf_pack2<KF_MM_BF16>(v[2], v[3]),
                                     kf_pack2<KF_MM_BF16>(v[4], v[5]), kf_pack2<KF_MM_BF16>(v[6], v[7]));
#endif
            }
        }
    };
    /* registers -> shared, for operands with a prologue */
    auto store_tile = [&](int stage) {
        const uint32_t sa = sbase + stage * STAGE_BYTES, sb = sa + A_BYTES;
        (void)sa;
        (void)sb;
#ifndef KF_MM_A_PTR
#pragma unroll
        for (int i = 0; i < A_PER; i++) {
            int idx = tid + i * NT;
            if (A_CHUNKS % NT == 0 || idx < A_CHUNKS) {
                uint32_t d = sa + kf_swz<ACH>(idx / ACH, idx % ACH);
                asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(d), "r"(areg[i].x), "r"(areg[i].y),
                             "r"(areg[i].z), "r"(areg[i].w));
            }
        }
#endif
#ifndef KF_MM_B_PTR
#pragma unroll
        for (int i = 0; i < B_PER; i++) {
            int idx = tid + i * NT;
            if (B_CHUNKS % NT == 0 || idx < B_CHUNKS) {
                uint32_t d = sb + kf_swz<BCH>(idx / BCH, idx % BCH);
                asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(d), "r"(breg[i].x), "r"(breg[i].y),
                             "r"(breg[i].z), "r"(breg[i].w));
            }
        }
#endif
    };

    float acc[MI][NI][4];
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++)
#pragma unroll
            for (int q = 0; q < 4; q++) acc[i][j][q] = 0.0f;

#pragma unroll
    for (int s = 0; s < S - 1; s++) {
        if (s < KT) {
            load_tile(s, s);
            store_tile(s);
        }
        kf_cp_async_commit();
    }
    for (int kt = 0; kt < KT; kt++) {
        kf_cp_async_wait<S - 2>();
        __syncthreads();
        const int nk = kt + S - 1;
        if (nk < KT) load_tile(nk, nk % S);
        kf_cp_async_commit();
        const uint32_t sa = sbase + (kt % S) * STAGE_BYTES, sb = sa + A_BYTES;
#pragma unroll
        for (int kk = 0; kk < BK / 16; kk++) {
            uint32_t af[MI][4], bf[NI][2];
#pragma unroll
            for (int i = 0; i < MI; i++)
                kf_ldsm_x4(af[i], sa + kf_swz<ACH>(wm0 + i * 16 + (lane & 15), kk * 2 + (lane >> 4)));
#pragma unroll
            for (int j = 0; j < NI / 2; j++) {
                uint32_t r[4];
                kf_ldsm_x4_t(r, sb + kf_swz<BCH>(kk * 16 + (lane & 15), (wn0 + j * 16) / 8 + (lane >> 4)));
                bf[2 * j][0] = r[0];
                bf[2 * j][1] = r[1];
                bf[2 * j + 1][0] = r[2];
                bf[2 * j + 1][1] = r[3];
            }
#pragma unroll
            for (int i = 0; i < MI; i++)
#pragma unroll
                for (int j = 0; j < NI; j++) kf_mma16816<KF_MM_BF16>(acc[i][j], af[i], bf[j]);
        }
        if (nk < KT) store_tile(nk % S);
    }
    kf_cp_async_wait<0>();
#if KF_MM_DIRECT_EPI
    /* the epilogue straight from the fragments (no shared-memory pass) */
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++)
#pragma unroll
            for (int q = 0; q < 4; q++) {
                int64_t m = m0 + wm0 + i * 16 + (lane >> 2) + (q >> 1) * 8, n = n0 + wn0 + j * 8 + (lane & 3) * 2 + (q & 1);
                if (m < M && n < N) KF_MM_STORE(B, b, m, n, acc[i][j][q]);
            }
#else
    __syncthreads();

    /* the epilogue: accumulators -> shared -> coalesced STOREs */
    float *cs = (float *)kf_smem;
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++) {
            int r = wm0 + i * 16 + (lane >> 2), c = wn0 + j * 8 + (lane & 3) * 2;
            *(float2 *)&cs[r * CPAD + c] = make_float2(acc[i][j][0], acc[i][j][1]);
            *(float2 *)&cs[(r + 8) * CPAD + c] = make_float2(acc[i][j][2], acc[i][j][3]);
        }
    __syncthreads();
    const bool full = m0 + BM <= M && n0 + BN <= N;
    if (full) {
#pragma unroll 4
        for (int idx = tid; idx < BM * BN; idx += NT) {
            int r = idx / BN, c = idx % BN;
            KF_MM_STORE(B, b, m0 + r, n0 + c, cs[r * CPAD + c]);
        }
    } else {
        for (int idx = tid; idx < BM * BN; idx += NT) {
            int r = idx / BN, c = idx % BN;
            if (m0 + r < M && n0 + c < N) KF_MM_STORE(B, b, m0 + r, n0 + c, cs[r * CPAD + c]);
        }
    }
#endif
}
#undef KF_MM_NT

#else
/* ---------------------------------------------------------------- SIMT (f32, f64) */
extern "C" __global__ void __launch_bounds__(256) KF_MM_FN(const __grid_constant__ kf_bufs B)
{
    enum { TM = 64, TN = 64, TK = 16 };
    __shared__ KF_MM_T as[TK][TM + 1], bs[TK][TN];
    const int64_t M = KF_MM_M, N = KF_MM_N, K = KF_MM_K;
    const int64_t b = blockIdx.z, m0 = (int64_t)blockIdx.y * TM, n0 = (int64_t)blockIdx.x * TN;
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    KF_MM_T acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0;
    for (int64_t k0 = 0; k0 < K; k0 += TK) {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int idx = tid + i * 256;
            int r = idx / TK, kk = idx % TK;
            int64_t gm = m0 + r, gk = k0 + kk;
            as[kk][r] = (gm < M && gk < K) ? (KF_MM_T)KF_MM_LOAD_A(B, b, gm, gk) : (KF_MM_T)0;
            int kr = idx / TN, c = idx % TN;
            int64_t gk2 = k0 + kr, gn = n0 + c;
            bs[kr][c] = (gk2 < K && gn < N) ? (KF_MM_T)KF_MM_LOAD_B(B, b, gk2, gn) : (KF_MM_T)0;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < TK; kk++) {
            KF_MM_T av[4], bv[4];
#pragma unroll
            for (int i = 0; i < 4; i++) av[i] = as[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; j++) bv[j] = bs[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] += av[i] * bv[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int64_t m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
            if (m < M && n < N) KF_MM_STORE(B, b, m, n, acc[i][j]);
        }
}
#endif
