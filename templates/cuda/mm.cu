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
 *   KF_MM_EPI8                 1: KF_MM_STORE8(B, b, m, n, v[8]) is defined, the
 *                              epilogue of C[b][m][n .. n+7] for n % 8 == 0, all
 *                              8 inside (vector loads and 16-byte stores); the
 *                              generator sets it where N % 8 == 0 and every
 *                              stored output is laid out as C; where a source
 *                              differs between rows, also
 *                              KF_MM_STORE16(B, b, m, m1, n, v[16]): rows m
 *                              and m1 at once, all the loads first
 *   KF_MM_A_PTR(B, b), KF_MM_B_PTR(B, b)      optional: plain row-major operand
 *                              pointers (uint16_t), 16-byte aligned rows: tiles
 *                              are then staged with cp.async
 *   KF_MM_BM, KF_MM_BN, KF_MM_BK, KF_MM_WM, KF_MM_WN, KF_MM_STAGES   the tile
 *                              configuration (KF_MM_TC only)
 *   KF_MM_WGMMA                with KF_MM_TC: 1 for the Hopper kernel (sm_90a,
 *                              wgmma; KF_MM_WM/WN unused, BK 64)
 * then pastes this text and #undefs them.  B is the kf_bufs table.
 *
 * Tensor-core kernel: a multistage pipeline of mma.sync.m16n8k16.  A tile
 * (BM x BK) and a B tile (BK x BN) per stage in shared memory, XOR-swizzled in
 * 16-byte chunks so that ldmatrix reads are free of bank conflicts; fragments
 * double-buffered in registers across k steps.  Plain operands are copied
 * with cp.async (zero-filled past the edges); an operand with a prologue is
 * loaded into registers (8 consecutive values a thread, vector loads where
 * the compiler can merge them), the prologue applied, and stored to shared
 * memory one k tile later.  The Hopper kernel (KF_MM_WGMMA) is described
 * where it is defined.  The epilogue
 * (KF_MM_DIRECT_EPI, the default) STOREs straight from the accumulator
 * fragments: each quad of lanes covers 8 consecutive columns of a row; with
 * KF_MM_EPI8 the quad's four 8-column groups are transposed by shuffles
 * (kf_quad_t8) so that each lane owns 8 consecutive columns and calls
 * STORE8 (the scalar STORE at ragged edges); with STORE16 the groups of
 * rows r and r + 8 go to one call, so that one row's source loads wait
 * under the other's arithmetic.  The
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
/* 16 bytes to shared memory */
KF_INLINE void kf_st_shared_w4(uint32_t dst, uint32_t x, uint32_t y, uint32_t z, uint32_t w)
{
    asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(dst), "r"(x), "r"(y), "r"(z), "r"(w));
}
/* A thread's PER staged chunks of a tile (chunk tid + i NT of CHUNKS, CH a
 * row) from registers into their swizzled places from base. */
template <int PER, int CHUNKS, int CH, int NT>
KF_INLINE void kf_st_chunks(uint32_t base, const uint4 *reg, int tid)
{
#pragma unroll
    for (int i = 0; i < PER; i++) {
        int idx = tid + i * NT;
        if (CHUNKS % NT == 0 || idx < CHUNKS) {
            kf_st_shared_w4(base + kf_swz<CH>(idx / CH, idx % CH), reg[i].x, reg[i].y, reg[i].z, reg[i].w);
        }
    }
}
/* The 8-wide epilogue's shuffle: in the accumulator layouts of mma.sync and
 * wgmma, lane q of a quad holds columns 2q, 2q + 1 of four consecutive
 * 8-column groups g (x[g][0..1]); afterwards it holds all 8 columns of group
 * q (w[0..7]), by two butterfly exchanges (lanes q ^ 2, then q ^ 1), in
 * registers, no shared memory, no barrier.  Every lane must take part. */
KF_INLINE void kf_quad_t8(const float (&x)[4][2], float *w, int lane)
{
    const bool hi = lane & 2, lo = lane & 1;
    float u[2][2][2]; /* u[j][k]: source lane bit 1 = j, group (lane & 2) + k */
#pragma unroll
    for (int k = 0; k < 2; k++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
            float r = __shfl_xor_sync(0xffffffffu, hi ? x[k][e] : x[k + 2][e], 2);
            u[0][k][e] = hi ? r : x[k][e];
            u[1][k][e] = hi ? x[k + 2][e] : r;
        }
#pragma unroll
    for (int j = 0; j < 2; j++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
            float r = __shfl_xor_sync(0xffffffffu, lo ? u[j][0][e] : u[j][1][e], 1);
            w[(2 * j) * 2 + e] = lo ? r : u[j][0][e];
            w[(2 * j + 1) * 2 + e] = lo ? u[j][1][e] : r;
        }
}
/* Tiles in grouped order, so that consecutive blocks share A rows in L2:
 * groups of G row blocks, each walked column by column. */
KF_INLINE void kf_mm_tile(int pid, int nm, int nn, int *tm, int *tn, int G = 8)
{
    int per = G * nn, grp = pid / per, first = grp * G;
    int gs = nm - first < G ? nm - first : G;
    *tm = first + (pid % per) % gs;
    *tn = (pid % per) / gs;
}
#endif

#define KF_MM_CAT2(a, b) a##b
#define KF_MM_CAT(a, b) KF_MM_CAT2(a, b)


#if KF_MM_WGMMA && !defined(KF_MM_WGMMA_COMMON)
#define KF_MM_WGMMA_COMMON
/* Hopper (sm_90a) warpgroup MMA: D(64 x N, f32, registers) += A(64 x 16,
 * shared, K-major) * B(16 x N, shared, N-major: the trans-b flag), both
 * operands in 128-byte-swizzled shared memory, described by 64-bit
 * descriptors: start address, leading and stride byte offsets (>> 4), and
 * the swizzle mode (1 = 128 bytes) in bits 62-63. */
KF_INLINE uint64_t kf_wg_desc(uint32_t addr, uint32_t lbo, uint32_t sbo)
{
    return (uint64_t)((addr & 0x3ffff) >> 4) | ((uint64_t)(lbo >> 4) << 16) | ((uint64_t)(sbo >> 4) << 32) |
           (1ull << 62);
}
KF_INLINE void kf_wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
KF_INLINE void kf_wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> KF_INLINE void kf_wg_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }
KF_INLINE void kf_fence_async_smem() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
KF_INLINE void kf_reg_fence(float &x) { asm volatile("" : "+f"(x)::"memory"); }
template <int BF16> KF_INLINE void kf_st_shared16_t(uint32_t dst, const float *v)
{
    kf_st_shared_w4(dst, kf_pack2<BF16>(v[0], v[1]), kf_pack2<BF16>(v[2], v[3]), kf_pack2<BF16>(v[4], v[5]),
                    kf_pack2<BF16>(v[6], v[7]));
}
#define kf_st_shared16(dst, v) kf_st_shared16_t<KF_MM_BF16>(dst, v)
template <int BF16> KF_INLINE void kf_wgmma_n128(float *d, uint64_t da, uint64_t db)
{
    if (BF16)
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 1;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                 : "l"(da), "l"(db), "r"(1));
    else
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 1;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
                 : "l"(da), "l"(db), "r"(1));
}
template <int BF16> KF_INLINE void kf_wgmma_n256(float *d, uint64_t da, uint64_t db)
{
    if (BF16)
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, %128, %129, p, 1, 1, 0, 1;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
                 : "l"(da), "l"(db), "r"(1));
    else
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, %128, %129, p, 1, 1, 0, 1;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
                 : "l"(da), "l"(db), "r"(1));
}
/* The same with A from registers (a: this thread's four f16x2 fragment
 * registers of a 64 x 16 A, as mma.sync's m16n8k16 A fragment a warp) and
 * B K-major (no transpose): the transposed kernel's (KF_MM_WGMMA 7) */
KF_INLINE void kf_wgmma_n256_ra(float *d, const uint32_t *a, uint64_t db)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %133, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, {%128, %129, %130, %131}, %132, p, 1, 1, 0;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
}
/* A warpgroup thread's accumulators of the 8-column groups 4t .. 4t + 3, row
 * half h, as kf_quad_t8 takes them */
KF_INLINE void kf_wg_group(const float *d, int t, int h, float (&x)[4][2])
{
#pragma unroll
    for (int g = 0; g < 4; g++) {
        x[g][0] = d[(4 * t + g) * 4 + h * 2];
        x[g][1] = d[(4 * t + g) * 4 + h * 2 + 1];
    }
}
/* The products of one stage for a warpgroup's MH x 64 x BN accumulators
 * (MH row blocks of 64, block h at d + h * BN / 2): A at sa (its 64 MH
 * rows), B at sb, four k steps of 16, committed as one group. */
template <int BN, int BF16, int MH = 1> KF_INLINE void kf_wg_stage(float *d, uint32_t sa, uint32_t sb)
{
    /* each step's descriptors are the stage's plus the step's offset >> 4:
     * the start address field (bits 0-13) holds any shared address >> 4
     * without a carry out */
    const uint64_t da0 = kf_wg_desc(sa, 16, 1024), db0 = kf_wg_desc(sb, 8192, 1024);
    kf_wg_fence();
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
        const uint64_t db = db0 + kk * 2048 / 16;
#pragma unroll
        for (int h = 0; h < MH; h++) {
            const uint64_t da = da0 + (h * 64 * 128 + kk * 32) / 16;
            if (BN == 256) kf_wgmma_n256<BF16>(d + h * BN / 2, da, db);
            else kf_wgmma_n128<BF16>(d + h * BN / 2, da, db);
        }
    }
    kf_wg_commit();
}
#endif

#if KF_MM_TC
/* 8 consecutive values of an operand, the prologue applied: X = 0, A's row r
 * (an m), columns c .. c + 7 (k); X = 1, B's row r (a k), columns c .. c + 7
 * (n).  Zeros outside.  When all 8 are inside the calls are unconditional
 * (IN: known inside), so that the loads of contiguous sources merge into
 * vectors. */
template <int X, bool IN>
KF_INLINE void KF_MM_CAT(KF_MM_FN, _chunk)(const kf_bufs &B, int64_t b, int64_t r, int64_t c, float *v)
{
    const int64_t R = X ? KF_MM_K : KF_MM_M, C = X ? KF_MM_N : KF_MM_K;
    if (IN || (r < R && c + 8 <= C)) {
#pragma unroll
        for (int j = 0; j < 8; j++) v[j] = X ? (float)KF_MM_LOAD_B(B, b, r, c + j) : (float)KF_MM_LOAD_A(B, b, r, c + j);
    } else {
#pragma unroll
        for (int j = 0; j < 8; j++)
            v[j] = r < R && c + j < C ? (X ? (float)KF_MM_LOAD_B(B, b, r, c + j) : (float)KF_MM_LOAD_A(B, b, r, c + j)) : 0.0f;
    }
}
#define KF_MM_CHUNK(X, IN, B, b, r, c, v) KF_MM_CAT(KF_MM_FN, _chunk)<X, IN>(B, b, r, c, v)
#endif

#if KF_MM_TC && KF_MM_EPI8
#undef KF_MM_PUT_ROWS
/* Row m, columns n .. n + 7 of the 8-wide epilogue, w already transposed:
 * one STORE8 (STORE8R: R, the values already rounded to the product's
 * dtype), or element by element at the ragged edges (where the scalar
 * epilogue's rounding of rounded values changes nothing). */
template <bool R>
KF_INLINE void KF_MM_CAT(KF_MM_FN, _st8)(const kf_bufs &B, int64_t b, const float *w, int64_t m, int64_t n)
{
    const int64_t M = KF_MM_M, N = KF_MM_N;
    if (m < M && n + 8 <= N) {
        if (R) KF_MM_STORE8R(B, b, m, n, w);
        else KF_MM_STORE8(B, b, m, n, w);
    } else if (m < M) {
#pragma unroll
        for (int e = 0; e < 8; e++)
            if (n + e < N) KF_MM_STORE(B, b, m, n + e, w[e]);
    }
}
/* One quad group of the 8-wide epilogue, transposed (every lane), then row
 * m, columns n .. n + 7 (this lane's group) stored. */
KF_INLINE void KF_MM_CAT(KF_MM_FN, _put8)(const kf_bufs &B, int64_t b, const float (&x)[4][2], int64_t m, int64_t n,
                                          int lane)
{
    float w[8];
    kf_quad_t8(x, w, lane);
    KF_MM_CAT(KF_MM_FN, _st8)<false>(B, b, w, m, n);
}
#ifdef KF_MM_STORE16
/* Two quad groups of the 8-wide epilogue, rows m and m + 8, columns n ..
 * n + 7 (this lane's group): x0, x1 as the accumulator layouts hold them
 * (see kf_quad_t8), transposed (every lane, before any branch), then both
 * rows in one STORE16 (all of both sources' loads issued before either
 * row's arithmetic) where both are inside. */
KF_INLINE void KF_MM_CAT(KF_MM_FN, _put16)(const kf_bufs &B, int64_t b, const float (&x0)[4][2],
                                           const float (&x1)[4][2], int64_t m, int64_t n, int lane)
{
    float w[16];
    kf_quad_t8(x0, w, lane);
    kf_quad_t8(x1, w + 8, lane);
    if (m + 8 < KF_MM_M && n + 8 <= KF_MM_N) {
        KF_MM_STORE16(B, b, m, m + 8, n, w);
    } else {
        KF_MM_CAT(KF_MM_FN, _st8)<false>(B, b, w, m, n);
        KF_MM_CAT(KF_MM_FN, _st8)<false>(B, b, w + 8, m + 8, n);
    }
}
/* x0, x1: rows m and m + 8 */
#define KF_MM_PUT_ROWS(B, b, x0, x1, m, n, lane) KF_MM_CAT(KF_MM_FN, _put16)(B, b, x0, x1, m, n, lane)
#else
#define KF_MM_PUT_ROWS(B, b, x0, x1, m, n, lane)              \
    do {                                                      \
        KF_MM_CAT(KF_MM_FN, _put8)(B, b, x0, m, n, lane);     \
        KF_MM_CAT(KF_MM_FN, _put8)(B, b, x1, m + 8, n, lane); \
    } while (0)
#endif
#endif

#if KF_MM_TC && KF_MM_WGMMA
/* The epilogue of one warpgroup's 64 x BN accumulators d, rows m0 ..,
 * columns n0 ..: value e + 2h + 4j of a thread is row 16 wq + lane / 4 + 8h,
 * column 8j + 2 (lane % 4) + e. */
template <int BN>
KF_INLINE void KF_MM_CAT(KF_MM_FN, _wg_epi)(const kf_bufs &B, int64_t b, const float *d, int64_t m0, int64_t n0, int lane)
{
    const int wq = (threadIdx.x >> 5) & 3;
#if KF_MM_EPI8
    /* 8-wide: a quad's four groups of 8 columns transposed through
     * shuffles, then each lane stores 8 consecutive columns of its row */
#pragma unroll
    for (int t = 0; t < BN / 32; t++) {
        float x0[4][2], x1[4][2];
        kf_wg_group(d, t, 0, x0);
        kf_wg_group(d, t, 1, x1);
        KF_MM_PUT_ROWS(B, b, x0, x1, m0 + wq * 16 + (lane >> 2), n0 + (4 * t + (lane & 3)) * 8, lane);
    }
#else
    const int64_t M = KF_MM_M, N = KF_MM_N;
#pragma unroll
    for (int j = 0; j < BN / 8; j++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            int64_t m = m0 + wq * 16 + (lane >> 2) + h * 8, n = n0 + j * 8 + (lane & 3) * 2;
            if (m < M && n + 1 < N) {
                KF_MM_STORE(B, b, m, n, d[j * 4 + h * 2]);
                KF_MM_STORE(B, b, m, n + 1, d[j * 4 + h * 2 + 1]);
            } else if (m < M && n < N) {
                KF_MM_STORE(B, b, m, n, d[j * 4 + h * 2]);
            }
        }
#endif
}

#endif

#if KF_MM_WGMMA >= 2 && !defined(KF_MM_WS_COMMON)
#define KF_MM_WS_COMMON
/* The warp-specialised kernel's machinery: tensor maps (the driver's
 * CUtensorMap, 128 opaque bytes, passed as __grid_constant__ parameters),
 * the Tensor Memory Accelerator's tile loads and the shared-memory barriers
 * (mbarrier) that hand stages between producer and consumers. */
struct __align__(64) kf_tmap {
    uint64_t q[16];
};
KF_INLINE void kf_mbar_init(uint32_t bar, int count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
KF_INLINE void kf_mbar_arrive(uint32_t bar)
{
    asm volatile("{\n.reg .b64 st;\nmbarrier.arrive.shared::cta.b64 st, [%0];\n}\n" ::"r"(bar) : "memory");
}
/* the bytes the stage's tile loads will deliver, announced without arriving */
KF_INLINE void kf_mbar_expect(uint32_t bar, uint32_t bytes)
{
    asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
KF_INLINE void kf_mbar_arrive_expect(uint32_t bar, uint32_t bytes)
{
    asm volatile("{\n.reg .b64 st;\nmbarrier.arrive.expect_tx.shared::cta.b64 st, [%0], %1;\n}\n" ::"r"(bar),
                 "r"(bytes) : "memory");
}
/* until the phase of the given parity has completed */
KF_INLINE void kf_mbar_wait(uint32_t bar, uint32_t parity)
{
    asm volatile("{\n.reg .pred p;\nKF_WAIT:\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
                 "@!p bra KF_WAIT;\n}\n" ::"r"(bar), "r"(parity) : "memory");
}
KF_INLINE void kf_tma2(uint32_t dst, const kf_tmap &m, int c0, int c1, uint32_t bar)
{
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n"
                 ::"r"(dst), "l"((uint64_t)&m), "r"(c0), "r"(c1), "r"(bar) : "memory");
}
KF_INLINE void kf_tma3(uint32_t dst, const kf_tmap &m, int c0, int c1, int c2, uint32_t bar)
{
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n"
                 ::"r"(dst), "l"((uint64_t)&m), "r"(c0), "r"(c1), "r"(c2), "r"(bar) : "memory");
}
/* a tile load by a tensor map of rank RANK (3: the batch b is the third coordinate) */
template <int RANK> KF_INLINE void kf_tma(uint32_t dst, const kf_tmap &m, int c0, int c1, int64_t b, uint32_t bar)
{
    if (RANK == 3) kf_tma3(dst, m, c0, c1, (int)b, bar);
    else kf_tma2(dst, m, c0, c1, bar);
}
/* the same load multicast to the blocks of the cluster in mask: the tile
 * lands at the same offset of each one's shared memory and completes on the
 * barrier at the same offset there */
template <int RANK>
KF_INLINE void kf_tma_mc(uint32_t dst, const kf_tmap &m, int c0, int c1, int64_t b, uint32_t bar, uint16_t mask)
{
    if (RANK == 3)
        asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster"
                     " [%0], [%1, {%2, %3, %4}], [%5], %6;\n"
                     ::"r"(dst), "l"((uint64_t)&m), "r"(c0), "r"(c1), "r"((int)b), "r"(bar), "h"(mask) : "memory");
    else
        asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster"
                     " [%0], [%1, {%2, %3}], [%4], %5;\n"
                     ::"r"(dst), "l"((uint64_t)&m), "r"(c0), "r"(c1), "r"(bar), "h"(mask) : "memory");
}
/* one arrival on the barrier at this block's offset bar in block cta of the cluster */
KF_INLINE void kf_mbar_arrive_in(uint32_t bar, uint32_t cta)
{
    asm volatile("{\n.reg .b32 ra;\nmapa.shared::cluster.u32 ra, %0, %1;\n"
                 "mbarrier.arrive.shared::cluster.b64 _, [ra];\n}\n" ::"r"(bar), "r"(cta) : "memory");
}
KF_INLINE void kf_cluster_sync()
{
    asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}
/* 8 16-bit values (f16, or bf16 with BF16) from shared memory, as floats */
template <int BF16> KF_INLINE void kf_ld_shared16_t(uint32_t src, float *v)
{
    uint32_t u[4];
    asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];\n" : "=r"(u[0]), "=r"(u[1]), "=r"(u[2]), "=r"(u[3]) : "r"(src));
#pragma unroll
    for (int i = 0; i < 4; i++) {
        v[2 * i] = BF16 ? kf_bf2f((uint16_t)(u[i] & 0xffff)) : kf_h2f((uint16_t)(u[i] & 0xffff));
        v[2 * i + 1] = BF16 ? kf_bf2f((uint16_t)(u[i] >> 16)) : kf_h2f((uint16_t)(u[i] >> 16));
    }
}
/* raw staging (see _raw_tile below): 2, 4 or 8 words from shared memory */
KF_INLINE void kf_ld_shared_raw(uint32_t src, uint32_t *u, int words)
{
    if (words == 2)
        asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];\n" : "=r"(u[0]), "=r"(u[1]) : "r"(src));
    else
        asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];\n" : "=r"(u[0]), "=r"(u[1]), "=r"(u[2]), "=r"(u[3]) : "r"(src));
    if (words == 8)
        asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];\n" : "=r"(u[4]), "=r"(u[5]), "=r"(u[6]), "=r"(u[7]) : "r"(src + 16));
}
/* 8 raw values of type T (the first 8 of v), loaded as 32-bit words u */
template <class T> union kf_raw8 {
    uint32_t u[8];
    T v[32 / sizeof(T)];
};
/* 8-bit raw values (words u[0], u[1]) as 4 f16x2 pairs h, exactly: each
 * byte b (int8: biased by 128) put under the exponent of 1024 (0x6400 | b
 * is 1024 + b), then 1024 (+ 128) taken off; pair 2i from the bytes of u[i]
 * that byte selector LO picks, pair 2i + 1 from those HI picks */
template <class T, unsigned LO, unsigned HI> KF_INLINE void kf_raw8_h2(const uint32_t *u, uint32_t *h)
{
    const bool sgn = (T)-1 < 0;
#pragma unroll
    for (int i = 0; i < 2; i++) {
        const uint32_t v = sgn ? u[i] ^ 0x80808080u : u[i], off = sgn ? 0x64806480u : 0x64006400u;
        h[2 * i] = kf_h2_sub(__byte_perm(v, 0x64646464u, LO), off);
        h[2 * i + 1] = kf_h2_sub(__byte_perm(v, 0x64646464u, HI), off);
    }
}
/* 8 raw values (words u) as 4 f16x2 pairs h: f16 as they are; 8-bit
 * integers by kf_raw8_h2, bytes 0, 1 and 2, 3 of a word a pair */
template <class T> KF_INLINE void kf_raw_h2(const uint32_t *u, uint32_t *h)
{
    if (sizeof(T) == 2) {
#pragma unroll
        for (int i = 0; i < 4; i++) h[i] = u[i];
        return;
    }
    kf_raw8_h2<T, 0x4140, 0x4342>(u, h);
}
/* 8-bit raw values as f16x2 pairs down the columns: word u[i] holds bytes
 * (k, n), (k, n + 1), (k + 1, n), (k + 1, n + 1); h[2i] is column n's
 * pair (bytes 0, 2), h[2i + 1] column n + 1's (bytes 1, 3) */
template <class T> KF_INLINE void kf_raw_h2k(const uint32_t *u, uint32_t *h) { kf_raw8_h2<T, 0x4240, 0x4341>(u, h); }
/* barrier 2 among the 128 producer threads only */
KF_INLINE void kf_bar_producers() { asm volatile("bar.sync 2, 128;\n" ::: "memory"); }
/* four 8 x 8 matrices of 16-bit values to shared memory: r[i] is this
 * lane's pair of matrix i (row lane / 4, columns 2 (lane % 4) and + 1, the
 * accumulator fragments' layout); lane l gives the address of row l % 8 of
 * matrix l / 8 (16 bytes) */
KF_INLINE void kf_stmatrix_x4(uint32_t addr, const uint32_t *r)
{
    asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(r[0]), "r"(r[1]),
                 "r"(r[2]), "r"(r[3])
                 : "memory");
}
/* kf_stmatrix_x4 transposed: lane l's address is that of column l % 8 of
 * matrix l / 8, whose 8 rows land there in order */
KF_INLINE void kf_stmatrix_x4_t(uint32_t addr, const uint32_t *r)
{
    asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(r[0]),
                 "r"(r[1]), "r"(r[2]), "r"(r[3])
                 : "memory");
}
KF_INLINE void kf_ld_shared_v2(uint32_t src, uint32_t *u)
{
    asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];\n" : "=r"(u[0]), "=r"(u[1]) : "r"(src));
}
/* The four stmatrix registers of a consumer warp's accumulators d (its 16
 * rows of the wgmma fragments), rounded to 16 bits: matrices i = 0..3,
 * column group j = 8k + 2q + i / 2, row half i % 2 */
template <int BF16> KF_INLINE void kf_acc_x4(const float *d, int k, int q, uint32_t *r)
{
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int j = 8 * k + 2 * q + (i >> 1), h = i & 1;
        r[i] = kf_pack2<BF16>(d[j * 4 + h * 2], d[j * 4 + h * 2 + 1]);
    }
}
/* A consumer warp's accumulators d (its 16 rows of the wgmma fragments)
 * of columns 64 k to 64 k + 63, rounded to 16 bits (bf16 where BF16, else
 * f16), put with stmatrix, which takes the fragments' layout as it is,
 * into a 2 KB slice: 16 rows of 128 bytes, 16-byte chunk c of row r at c ^
 * (r & 7). */
template <int BF16> KF_INLINE void kf_put64(const float *d, int k, int lane, uint32_t slice)
{
#pragma unroll
    for (int q = 0; q < 4; q++) {
        uint32_t r[4];
        kf_acc_x4<BF16>(d, k, q, r);
        const int i = lane >> 3, jj = 2 * q + (i >> 1), row = 8 * (i & 1) + (lane & 7);
        kf_stmatrix_x4(slice + row * 128 + ((jj ^ (row & 7)) << 4), r);
    }
}
/* barrier 1 among the consumer warpgroups only */
template <int NTH> KF_INLINE void kf_bar_consumers() { asm volatile("bar.sync 1, %0;\n" ::"n"(NTH) : "memory"); }
template <int R> KF_INLINE void kf_setmaxnreg_dec() { asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(R)); }
template <int R> KF_INLINE void kf_setmaxnreg_inc() { asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(R)); }
#endif

#if KF_MM_TC && KF_MM_WGMMA == 3
/* The staged epilogue (KF_MM_WGMMA 3): a finished tile's products, rounded to
 * the product's dtype (as the epilogue's first step does anyway), wait in
 * shared memory (BM rows of BN 16-bit values; 16-byte chunk c of row r at
 * c ^ (r & 7)) while the consumers multiply the next tile, running its
 * epilogue a few chunks at a time between issuing a stage's products and
 * waiting for them.  Chunk q: row q / (BN / 8), 8 columns from 8 (q % (BN / 8)). */
template <int BN>
KF_INLINE void KF_MM_CAT(KF_MM_FN, _stg_put)(uint32_t stg, const float *d, int r0, int lane)
{
#pragma unroll
    for (int t = 0; t < BN / 32; t++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float x[4][2], w[8];
            kf_wg_group(d, t, h, x);
            kf_quad_t8(x, w, lane);
            const int r = r0 + (lane >> 2) + h * 8, c = 4 * t + (lane & 3);
            kf_st_shared16(stg + r * BN * 2 + ((c ^ (r & 7)) << 4), w);
        }
}
template <int BN>
KF_INLINE void KF_MM_CAT(KF_MM_FN, _stg_epi)(const kf_bufs &B, int64_t b, uint32_t stg, int64_t m0, int64_t n0, int q)
{
    const int64_t M = KF_MM_M, N = KF_MM_N;
    const int r = q / (BN / 8), c = q % (BN / 8);
    const int64_t m = m0 + r, n = n0 + c * 8;
    if (m >= M || n >= N) return;
    float v[8];
    kf_ld_shared16_t<KF_MM_BF16>(stg + r * BN * 2 + ((c ^ (r & 7)) << 4), v);
#if KF_MM_EPI8
    if (n + 8 <= N) {
        KF_MM_STORE8(B, b, m, n, v);
        return;
    }
#endif
#pragma unroll
    for (int e = 0; e < 8; e++)
        if (n + e < N) KF_MM_STORE(B, b, m, n + e, v[e]);
}
#endif

#if KF_MM_TC && KF_MM_WGMMA >= 2
/* ---------------------------------------------------------------- Hopper: warp-specialised
 * sm_90a, persistent: a grid of at most one block per multiprocessor walks
 * the output tiles (BM x BN, batch included) in grouped order.  The first
 * warpgroups are producers: they fill a ring of S stages (the wgmma layouts
 * of the kernel below), plain operands by TMA tile loads issued by one
 * thread (KF_MM_A_TMA / KF_MM_B_TMA: the tensor map's rank, 3 when
 * batched), an operand with a prologue computed by all their threads (8
 * consecutive values each, every chunk's loads issued before its stores,
 * the prologue applied, packed, stored to the swizzled place and fenced for
 * the tensor cores' proxy).  The other BM / 64 warpgroups are consumers,
 * each 64 x BN with wgmma.  Stage s has two barriers: full[s] (the loads'
 * bytes and, with a prologue, the producer threads' arrivals) and empty[s]
 * (every consumer thread, once its products on the stage are done).  The
 * producers run up to S stages ahead, into the next tile while the
 * consumers run the epilogue.  Registers move from producers to consumers
 * with setmaxnreg.  KF_MM_WGMMA 3 stages the epilogue (see _stg_put above);
 * KF_MM_CTAS 2 puts two blocks on a multiprocessor, so that one's epilogue
 * runs while the other's products do.  KF_MM_WGMMA 4 is the ping-pong
 * kernel (CUTLASS's name): the two consumer warpgroups take the block's
 * tiles in turn, each a whole 128 x BN tile (two m64 products a k step),
 * so that one's epilogue runs while the other's products do; a pair of
 * turn barriers lets a warpgroup start a tile's stages only once the other
 * has waited for all of the previous tile's (the stage barriers' parity
 * waits see at most one phase ahead), and a stage is freed by 128
 * arrivals. */
/* Producer warpgroups: one (only TMA: one thread issues), or two taking
 * turns at stages when an operand is computed and BN is 128, so that two
 * stages' loads are in flight (BN 256 needs 64 x 256 accumulators a
 * consumer: more registers than 65536 / 512 threads allow).  Registers a
 * thread at launch: 65536 / threads (168, or 128 with two producers: then
 * the split stays even); setmaxnreg.inc waits until the pool has them, so
 * the consumers take exactly what the producers give up: (L - P) *
 * producers = (C - L) * consumers.  ptxas compiles every part of the
 * kernel within L, whatever setmaxnreg says (a consumer's wgmma failed to
 * assemble with L = 80), so the split only hands the hardware's registers
 * over.  KF_MM_NPRO must match the launch (ws_launch in cudagen.c). */
#if KF_MM_WGMMA == 7
/* the transposed kernel: one producer thread (TMA), two consumer warpgroups */
#define KF_MM_NPRO 1
#define KF_MM_PRODUCER_REGS 40
#define KF_MM_CONSUMER_REGS 232
#define KF_MM_WS_G 1
#elif KF_MM_CTAS == 2
/* two blocks a multiprocessor: the producer is one warp after the consumer
 * warpgroups, no setmaxnreg (ptxas compiles all the code within the
 * launch's register count, at most 112 here) */
#define KF_MM_NPRO 0
#define KF_MM_WS_G 1
#elif defined(KF_MM_A_TMA) && defined(KF_MM_B_TMA)
#define KF_MM_NPRO 1
#define KF_MM_PRODUCER_REGS 40
#define KF_MM_CONSUMER_REGS 232
#define KF_MM_WS_G 1
#elif defined(KF_MM_A_RAW) || defined(KF_MM_B_RAW)
#define KF_MM_RAW 1
#define KF_MM_NPRO 1
#define KF_MM_PRODUCER_REGS 88
#define KF_MM_CONSUMER_REGS 208
#define KF_MM_WS_G 4
#elif KF_MM_BN == 256
#define KF_MM_NPRO 1
#define KF_MM_PRODUCER_REGS 88
#define KF_MM_CONSUMER_REGS 208
#define KF_MM_WS_G 4 /* chunks a producer thread loads before it stores */
#else
#define KF_MM_NPRO 2
#define KF_MM_WS_G 8
#endif
#define KF_MM_NT ((KF_MM_BM / 64 + KF_MM_NPRO) * 128 + (KF_MM_NPRO ? 0 : 32))
#ifdef KF_MM_RAW
#define KF_MM_RAW_R KF_MM_RAW_SLOTS
#else
#define KF_MM_RAW_R 0
#endif
#if KF_MM_CTAS != 1 && !(KF_MM_CTAS == 2 && KF_MM_BN == 128 && defined(KF_MM_A_TMA) && defined(KF_MM_B_TMA))
#error "two blocks a multiprocessor: 64 x 128 accumulators a consumer, TMA producers"
#endif
#if KF_MM_WGMMA == 4 && !(KF_MM_BN == 128 && defined(KF_MM_A_TMA) && defined(KF_MM_B_TMA))
#error "ping-pong: 128 x 128 accumulators a consumer, TMA producers"
#endif
#if KF_MM_WGMMA == 6 && !(defined(KF_MM_A_TMA) && defined(KF_MM_B_TMA))
#error "the epilogue through shared memory: TMA producers"
#endif
#if KF_MM_WGMMA == 6 && KF_MM_EPI8
/* The epilogue of R rows of a consumer warp's 2 KB slice at sl (see
 * kf_put64), rows ra + 16 / R * i for i < R (the product's rows rw + those),
 * the 8 columns of chunk c (the product's n to n + 7), from values already
 * rounded: with R 4, one KF_MM_STORE32R call where all are inside (every
 * load of the four rows issued before any of their math), else row by
 * row (KF_MM_STORE8R). */
template <int R>
KF_INLINE void KF_MM_CAT(KF_MM_FN, _slice)(const kf_bufs &B, int64_t b, uint32_t sl, int ra, int c, int64_t rw,
                                           int64_t n)
{
    float w[8 * R];
#pragma unroll
    for (int i = 0; i < R; i++) {
        const int r = ra + 16 / R * i;
        kf_ld_shared16_t<KF_MM_BF16>(sl + r * 128 + ((c ^ (r & 7)) << 4), w + 8 * i);
    }
#ifdef KF_MM_STORE32R
    if (R == 4 && rw + ra + 12 < KF_MM_M && n + 8 <= KF_MM_N) {
        KF_MM_STORE32R(B, b, rw + ra, rw + ra + 4, rw + ra + 8, rw + ra + 12, n, w);
        return;
    }
#endif
#pragma unroll
    for (int i = 0; i < R; i++) KF_MM_CAT(KF_MM_FN, _st8)<true>(B, b, w + 8 * i, rw + ra + 16 / R * i, n);
}
/* The epilogue through shared memory (KF_MM_WGMMA 6, the warp-specialised
 * kernel otherwise): each consumer warp rounds its 16 x BN accumulators to
 * the product's dtype and puts them, 64 columns at a time, into a 2 KB
 * slice of its own (16 rows of 128 bytes, 16-byte chunks XOR-swizzled by
 * row) with stmatrix, which takes the accumulators' layout as it is; then
 * each lane reads 8 consecutive columns of rows r, r + 4, r + 8 and r + 12
 * and runs the epilogue on them from values already rounded (_slice),
 * where the 8-wide epilogue otherwise transposes the values through
 * shuffles and selects (four instructions an element) and rounds them.  A
 * warp's stores then cover 4 rows x 64 columns. */
template <int BN>
KF_INLINE void KF_MM_CAT(KF_MM_FN, _wg_epi_smem)(const kf_bufs &B, int64_t b, const float *d, int64_t m0, int64_t n0,
                                                 int lane, uint32_t stg)
{
    const int64_t rw = m0 + ((threadIdx.x >> 5) & 3) * 16; /* this warp's first row */
    const int c = lane & 7, r0 = lane >> 3;
#pragma unroll
    for (int k = 0; k < BN / 64; k++) {
        kf_put64<KF_MM_BF16>(d, k, lane, stg);
        __syncwarp();
#ifdef KF_MM_STORE32R
        KF_MM_CAT(KF_MM_FN, _slice)<4>(B, b, stg, r0, c, rw, n0 + 64 * k + 8 * c);
#else
#pragma unroll
        for (int p = 0; p < 2; p++) KF_MM_CAT(KF_MM_FN, _slice)<2>(B, b, stg, r0 + 4 * p, c, rw, n0 + 64 * k + 8 * c);
#endif
        __syncwarp(); /* every lane's reads done before the next columns land */
    }
}
#endif
#if KF_MM_WGMMA == 5 && !(KF_MM_BM == 64 && defined(KF_MM_A_TMA) && defined(KF_MM_B_TMA) && KF_MM_BATCH == 1)
#error "streaming: 64-row tiles, TMA producers, one batch"
#endif
/* KF_MM_PAIR 2: blocks in clusters of two, on the tiles of neighbouring row
 * blocks of one column block; each loads half of the B tile of a stage and
 * multicasts it to both, so that each B tile is read once for the two.  A stage is
 * freed by the consumer warps of both blocks (one arrival a warp on each
 * block's barrier), and the producer waits for the last stages to be freed
 * before it exits, so that no arrival targets a block that has gone. */
#ifndef KF_MM_PAIR
#define KF_MM_PAIR 1
#endif
/* KF_MM_GROUP: row blocks (or pairs of them) a group of the tile walk (see
 * kf_mm_tile); cudagen.c makes the tiles in flight at once span about as
 * many bytes of A as of B */
#ifndef KF_MM_GROUP
#define KF_MM_GROUP 8
#endif
#if KF_MM_PAIR > 1
#if !(KF_MM_PAIR == 2 && (KF_MM_WGMMA == 2 || KF_MM_WGMMA == 6) && KF_MM_CTAS == 1 && defined(KF_MM_A_TMA) && defined(KF_MM_B_TMA))
#error "pairs: the cooperative kernel (its epilogue direct or through shared memory) with TMA producers"
#endif
#define KF_MM_CLUSTER __cluster_dims__(KF_MM_PAIR, 1, 1)
#else
#define KF_MM_CLUSTER
#endif
#ifdef KF_MM_RAW
/* Raw staging (KF_MM_A_RAW / KF_MM_B_RAW: the tensor map's rank): an operand
 * whose prologue reads one buffer at the operand's own index (an int8
 * weight, an f32 activation) has that buffer's tiles loaded by TMA, as they
 * are, into a raw slot beside each stage: A as BM rows of 64 k, B as 64 k
 * rows of BN, row-major.  The producer warpgroup's 128 threads then apply
 * the rest of the prologue from there (KF_MM_LOAD_A_RAW / _B_RAW, the
 * generator's kf_kN_prologue_a|b_raw, or its packed _h2 where there is
 * one), 8 consecutive values a chunk, every load of G chunks before their
 * stores, into the stage's wgmma layout.  The raw slots are a ring of their
 * own, KF_MM_RAW_SLOTS deep (as many as the shared memory holds, up to 8):
 * one thread issues the raw loads that many iterations ahead, once every
 * producer has read the slot. */
/* the packed prologue of operand X (KF_MM_LOAD_A_H2 / _B_H2, the generator's
 * kf_kN_prologue_a|b_h2), where there is one */
/* an operand without a raw source: never staged raw, but spelled in
 * _raw_tile's code for both operands */
#ifndef KF_MM_LOAD_A_RAW
#define KF_MM_LOAD_A_RAW(B, b, i, j, raw) 0.0f
#define KF_MM_A_RAW_NONE
#endif
#ifndef KF_MM_LOAD_B_RAW
#define KF_MM_LOAD_B_RAW(B, b, i, j, raw) 0.0f
#define KF_MM_B_RAW_NONE
#endif
#ifdef KF_MM_LOAD_A_H2
#define KF_MM_A_H2 1
#else
#define KF_MM_A_H2 0
#define KF_MM_LOAD_A_H2(B, b, i, j, raw) 0u
#endif
#ifdef KF_MM_LOAD_B_H2
#define KF_MM_B_H2 1
#else
#define KF_MM_B_H2 0
#define KF_MM_LOAD_B_H2(B, b, i, j, raw) 0u
#endif
/* One stage's operand X (0: A, BM x 64; 1: B, 64 x BN) from its raw slot
 * sr into the stage's swizzled tile st: chunk q of this thread's, from
 * tid + 128 q.  IN: the whole tile inside the matrix. */
template <int X, int BM, int BN, bool IN, class T>
KF_INLINE void KF_MM_CAT(KF_MM_FN, _raw_tile)(const kf_bufs &B, int64_t b, uint32_t sr, uint32_t st, int64_t r0, int64_t c0, int tid)
{
    enum { W = X ? BN : 64, CH = W / 8, NQ = (X ? 64 : BM) * CH / 128, G = KF_MM_WS_G };
    const int64_t R = X ? KF_MM_K : KF_MM_M, C = X ? KF_MM_N : KF_MM_K;
#pragma unroll
    for (int q0 = 0; q0 < NQ; q0 += G) {
        kf_raw8<T> w[G];
#pragma unroll
        for (int i = 0; i < G; i++) {
            const int idx = tid + (q0 + i) * 128, r = idx / CH, c = idx % CH;
            kf_ld_shared_raw(sr + (uint32_t)((r * W + c * 8) * (int)sizeof(T)), w[i].u, (int)(2 * sizeof(T)));
        }
#pragma unroll
        for (int i = 0; i < G; i++) {
            const int idx = tid + (q0 + i) * 128, r = idx / CH, c = idx % CH;
            const int64_t gr = r0 + r, gc = c0 + c * 8;
            const uint32_t dst = X ? st + (c >> 3) * 8192 + r * 128 + (((c & 7) ^ (r & 7)) << 4)
                                   : st + r * 128 + ((c ^ (r & 7)) << 4);
            if (IN && (X ? KF_MM_B_H2 : KF_MM_A_H2)) {
                /* packed: 4 pairs of f16 */
                uint32_t h[4];
                kf_raw_h2<T>(w[i].u, h);
#pragma unroll
                for (int j = 0; j < 4; j++)
                    h[j] = X ? KF_MM_LOAD_B_H2(B, b, gr, gc + 2 * j, h[j]) : KF_MM_LOAD_A_H2(B, b, gr, gc + 2 * j, h[j]);
                kf_st_shared_w4(dst, h[0], h[1], h[2], h[3]);
                continue;
            }
            float v[8];
#pragma unroll
            for (int j = 0; j < 8; j++) {
                const float x = X ? (float)KF_MM_LOAD_B_RAW(B, b, gr, gc + j, w[i].v[j])
                                  : (float)KF_MM_LOAD_A_RAW(B, b, gr, gc + j, w[i].v[j]);
                v[j] = IN || (gr < R && gc + j < C) ? x : 0.0f;
            }
            kf_st_shared16(dst, v);
        }
    }
}
#endif
#if KF_MM_WGMMA == 5
/* ---------------------------------------------------------------- Hopper: streaming
 * For a product whose B fits in shared memory (N <= BN, K <= 256, one
 * batch), as a tall-and-skinny product's does: B is loaded once a block, by
 * TMA, each k tile completing on a barrier of its own, and stays; A streams
 * through a ring of S slots of 64 rows x 64 k, and two consumer warpgroups
 * take the block's 64-row tiles in turn (64 x BN accumulators each: all of
 * a tile's k tiles issued, then one wait), so that one's epilogue runs
 * while the other's products do and the ring is refilled under both.  S is
 * a multiple of 2 KT, so that every slot serves one consumer only: a
 * consumer's wait on a slot's fill always follows its own wait on the fill
 * before, and the parity of the barrier's phases cannot alias.  A slot is
 * freed by one arrival from each warp of its consumer. */
extern "C" __global__ void __launch_bounds__(384, 1)
    KF_MM_FN(const __grid_constant__ kf_bufs B, const __grid_constant__ kf_tmap TA, const __grid_constant__ kf_tmap TB)
{
    enum {
        BN = KF_MM_BN, KT = (int)((KF_MM_K + 63) / 64), S = KF_MM_STAGES / (2 * KT) * (2 * KT), A_SLOT = 64 * 128,
        B_KT = (BN / 64) * 8192, NACC = BN / 2
    };
    static_assert(KF_MM_BK == 64 && (BN == 128 || BN == 256) && KT <= 4 && S >= 2 * KT && KF_MM_N <= BN,
                  "streaming tile: B resident");
    extern __shared__ __align__(1024) unsigned char kf_smem[];
    __shared__ __align__(8) uint64_t kf_bars[2 * S + KT]; /* full, empty, B's k tiles */
    const int64_t tiles = (KF_MM_M + 63) / 64;
    const int wg = threadIdx.x >> 7, lane = threadIdx.x & 31;
    /* the swizzle acts on address bits 4-9: slots start on 1024 bytes */
    const uint32_t sa0 = (kf_smem_u32(kf_smem) + 1023u) & ~1023u, sb0 = sa0 + S * A_SLOT;
    const uint32_t full0 = kf_smem_u32(&kf_bars[0]), empty0 = full0 + 8 * S, bfull0 = full0 + 16 * S;
    if (threadIdx.x == 0) {
        for (int s = 0; s < S; s++) {
            kf_mbar_init(full0 + 8 * s, 1);
            kf_mbar_init(empty0 + 8 * s, 4);
        }
        for (int k = 0; k < KT; k++) kf_mbar_init(bfull0 + 8 * k, 1);
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    if (wg == 0) {
        /* ---- the producer: one thread; B's k tiles beside the first tile's */
        kf_setmaxnreg_dec<40>();
        if (threadIdx.x != 0) return;
        int it = 0;
        for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x)
            for (int kt = 0; kt < KT; kt++, it++) {
                const int s = it % S;
                if (it >= S) kf_mbar_wait(empty0 + 8 * s, ((it / S) - 1) & 1);
                kf_mbar_arrive_expect(full0 + 8 * s, A_SLOT);
                kf_tma<KF_MM_A_TMA>(sa0 + s * A_SLOT, TA, kt * 64, (int)(t * 64), 0, full0 + 8 * s);
                if (t != blockIdx.x) continue;
                kf_mbar_arrive_expect(bfull0 + 8 * kt, B_KT);
#pragma unroll
                for (int j = 0; j < BN / 64; j++)
                    kf_tma<KF_MM_B_TMA>(sb0 + kt * B_KT + j * 8192, TB, 64 * j, kt * 64, 0, bfull0 + 8 * kt);
            }
        return;
    }
    /* ---- the consumers: tiles L = cw, cw + 2, ... of the block's */
    kf_setmaxnreg_inc<232>();
    const int cw = wg - 1;
    float d[NACC];
    int L = cw;
    for (int64_t t = blockIdx.x + (int64_t)cw * gridDim.x; t < tiles; t += 2 * (int64_t)gridDim.x, L += 2) {
#pragma unroll
        for (int i = 0; i < NACC; i++) d[i] = 0.0f;
        for (int kt = 0; kt < KT; kt++) {
            const int it = L * KT + kt, s = it % S;
            kf_mbar_wait(full0 + 8 * s, (it / S) & 1);
            kf_mbar_wait(bfull0 + 8 * kt, 0); /* completes once: B stays */
            kf_wg_stage<BN, KF_MM_BF16>(d, sa0 + s * A_SLOT, sb0 + kt * B_KT);
        }
        kf_wg_wait<0>();
        __syncwarp();
        if (lane == 0)
            for (int kt = 0; kt < KT; kt++) kf_mbar_arrive(empty0 + 8 * ((L * KT + kt) % S));
#pragma unroll
        for (int i = 0; i < NACC; i++) kf_reg_fence(d[i]);
        KF_MM_CAT(KF_MM_FN, _wg_epi)<BN>(B, 0, d, t * 64, 0, lane);
    }
}
#elif KF_MM_WGMMA == 7
/* ---------------------------------------------------------------- Hopper: register A, transposed
 * For a product whose B is an 8-bit weight with a packed prologue along k
 * (KF_MM_LOAD_B_H2K: a @ (cast(wq) * scale)), one batch.  Raw staging
 * (above) converts such a weight shared memory to shared memory and is
 * bound by shared memory's bandwidth; here the product is computed
 * transposed, C^T = B^T A^T, so that the weight is wgmma's A operand,
 * which may come from registers.  A stage holds A's tile (BM = 256 rows of
 * 64 k by TMA, as for the other kernels: the transposed product's B,
 * K-major) and the weight's (64 k rows of BN = 128 bytes by TMA, 128-byte
 * swizzle).  Each of the two consumer warpgroups computes 64 n x 256 m of
 * the block's 256 x 128 output tile: a warp reads its 16 columns of the
 * weight's stage tile with two ldmatrix.trans of 16-bit pairs (each lane
 * then holds columns n, n + 1 at rows k, k + 1: the fragment's values, a
 * register a k step's pair), converts them exactly to f16 (kf_raw_h2k) and
 * applies the prologue to pairs along k (_rt_frag).  A warp's fragment row
 * g (and g + 8) is thus the weight's column 2g (and 2g + 1) of the warp's
 * 16; the accumulators' rows follow.  A stage's fragments are read by its
 * products while the next stage's are built: two register sets, taken in
 * turn.  The epilogue goes through a slice of each consumer warpgroup
 * (_rt_epi).  Measured on the H200 (a @ (cast(wq) * scale) 4096^3, one
 * call): 0.189 ms, where 16 2-byte loads a stage instead of the ldmatrix
 * took 0.200 and an epilogue through a slice a warp (16 columns, stores of
 * 32 bytes a row) 0.200 (0.235 with a residual, against 0.200). */
#if !(defined(KF_MM_A_TMA) && defined(KF_MM_B_RAW) && defined(KF_MM_LOAD_B_H2K) && KF_MM_BATCH == 1 && \
      KF_MM_EPI8 && !KF_MM_BF16)
#error "register A: A by TMA, an 8-bit B with a packed prologue along k, one batch, f16, the 8-wide epilogue"
#endif
/* A stage's weight fragments f (4 k steps of 16, 4 registers each) of this
 * thread's columns n and n + 1 (nl, nl + 1 of the tile's 128), from the
 * stage's weight tile at sw, k0 its first k; t4 = lane % 4.  IN: every k
 * and n inside, else zeros outside.  Words (k, n), (k, n + 1), (k + 1, n),
 * (k + 1, n + 1) by ldmatrix.trans of 16-bit pairs: matrix i of pair p,
 * rows 32 p + 8 i .. + 7, the 16 bytes of the warp's columns (conflict-free
 * under the swizzle). */
template <bool IN>
KF_INLINE void KF_MM_CAT(KF_MM_FN, _rt_frag)(const kf_bufs &B, uint32_t (&f)[16], uint32_t sw, int64_t k0, int64_t n,
                                             int nl, int t4)
{
    typedef KF_MM_B_RAW_T T;
    uint32_t W[2][4];
    const int lane = threadIdx.x & 31, cb = nl >> 4;
#pragma unroll
    for (int p = 0; p < 2; p++) {
        const int kr = 32 * p + 8 * (lane >> 3) + (lane & 7);
        kf_ldsm_x4_t(W[p], sw + kr * 128 + ((cb ^ (kr & 7)) << 4));
    }
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
        const uint32_t *u = W[kk >> 1] + 2 * (kk & 1);
        uint32_t h[4];
        kf_raw_h2k<T>(u, h);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int64_t k = k0 + 16 * kk + 2 * t4 + 8 * (j >> 1), nj = n + (j & 1);
            if (IN) {
                f[4 * kk + j] = KF_MM_LOAD_B_H2K(B, 0, k, nj, h[j]);
            } else {
                float v[2];
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const T raw = (T)(u[j >> 1] >> (8 * ((j & 1) + 2 * e)));
                    v[e] = k + e < KF_MM_K && nj < KF_MM_N ? (float)KF_MM_LOAD_B_RAW(B, 0, k + e, nj, raw) : 0.0f;
                }
                f[4 * kk + j] = kf_pack2<0>(v[0], v[1]);
            }
        }
    }
}
/* The epilogue of a consumer warpgroup's accumulators d: 64 n from nw (a
 * warp's fragment row g is its column 2g, row g + 8 column 2g + 1, of its
 * 16) by 256 m from m0, 64 m at a time through the warpgroup's 8 KB slice
 * sl.  stmatrix.trans puts them there as m rows of 128 bytes (warp w's
 * even columns in chunk 2w, its odd ones in 2w + 1; chunk c of row r at c
 * ^ (r & 7): no bank conflicts); after the warpgroup's named barrier bar,
 * each lane takes 8 consecutive columns of rows r, r + 4, r + 8, r + 12 of
 * its warp's 16 and runs the epilogue on them from values already rounded
 * (STORE32R, or STORE8R row by row): a warp's stores cover 4 rows of 128
 * bytes. */
KF_INLINE void KF_MM_CAT(KF_MM_FN, _rt_epi)(const kf_bufs &B, const float *d, int64_t m0, int64_t nw, int lane,
                                            uint32_t sl, int bar)
{
    const int wq = (threadIdx.x >> 5) & 3, c8 = lane & 7, r0 = lane >> 3;
#pragma unroll
    for (int kq = 0; kq < 4; kq++) {
#pragma unroll
        for (int q = 0; q < 4; q++) {
            uint32_t r[4];
            kf_acc_x4<0>(d, kq, q, r);
            const int i = lane >> 3, h = i & 1, row = 8 * (2 * q + (i >> 1)) + (lane & 7);
            kf_stmatrix_x4_t(sl + row * 128 + (((2 * wq + h) ^ (row & 7)) << 4), r);
        }
        asm volatile("bar.sync %0, 128;\n" ::"r"(bar) : "memory");
        float w[32];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int row = 16 * wq + r0 + 4 * i, ce = 2 * (c8 >> 1);
            uint32_t ev[2], od[2]; /* columns 8 c8 + 2c and + 1, c = 0..3 */
            kf_ld_shared_v2(sl + row * 128 + ((ce ^ (row & 7)) << 4) + 8 * (c8 & 1), ev);
            kf_ld_shared_v2(sl + row * 128 + (((ce + 1) ^ (row & 7)) << 4) + 8 * (c8 & 1), od);
#pragma unroll
            for (int c = 0; c < 4; c++) {
                w[8 * i + 2 * c] = kf_h2f((uint16_t)(ev[c >> 1] >> (16 * (c & 1))));
                w[8 * i + 2 * c + 1] = kf_h2f((uint16_t)(od[c >> 1] >> (16 * (c & 1))));
            }
        }
        const int64_t m = m0 + 64 * kq + 16 * wq + r0, n = nw + 8 * c8;
#ifdef KF_MM_STORE32R
        if (m + 12 < KF_MM_M && n + 8 <= KF_MM_N) {
            KF_MM_STORE32R(B, 0, m, m + 4, m + 8, m + 12, n, w);
        } else
#endif
        {
#pragma unroll
            for (int i = 0; i < 4; i++) KF_MM_CAT(KF_MM_FN, _st8)<true>(B, 0, w + 8 * i, m + 4 * i, n);
        }
        asm volatile("bar.sync %0, 128;\n" ::"r"(bar) : "memory"); /* every read done before the next m land */
    }
}
extern "C" __global__ void __launch_bounds__(384, 1)
    KF_MM_FN(const __grid_constant__ kf_bufs B, const __grid_constant__ kf_tmap TA, const __grid_constant__ kf_tmap TB)
{
    enum { BM = KF_MM_BM, BN = KF_MM_BN, S = KF_MM_STAGES, A_BYTES = BM * 128, STAGE_BYTES = A_BYTES + 64 * BN };
    static_assert(BM == 256 && BN == 128 && KF_MM_BK == 64 && S >= 2, "register A: 256 x 128 tiles");
    extern __shared__ __align__(1024) unsigned char kf_smem[];
    __shared__ __align__(8) uint64_t kf_bars[2 * S]; /* full, empty */
    const int64_t M = KF_MM_M, N = KF_MM_N, K = KF_MM_K;
    const int nm = (int)((M + BM - 1) / BM), nn = (int)((N + BN - 1) / BN), KT = (int)((K + 63) / 64);
    const int64_t tiles = (int64_t)nm * nn;
    const int wg = threadIdx.x >> 7, lane = threadIdx.x & 31;
    const uint32_t sbase = (kf_smem_u32(kf_smem) + 1023u) & ~1023u;
    const uint32_t full0 = kf_smem_u32(&kf_bars[0]), empty0 = kf_smem_u32(&kf_bars[S]);
    if (threadIdx.x == 0) {
        for (int s = 0; s < S; s++) {
            kf_mbar_init(full0 + 8 * s, 1);
            kf_mbar_init(empty0 + 8 * s, 256);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    if (wg == 0) {
        /* ---- the producer: one thread */
        kf_setmaxnreg_dec<KF_MM_PRODUCER_REGS>();
        if (threadIdx.x != 0) return;
        int it = 0;
        for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
            int tm, tn;
            kf_mm_tile((int)t, nm, nn, &tm, &tn, KF_MM_GROUP);
            for (int kt = 0; kt < KT; kt++, it++) {
                const int s = it % S;
                if (it >= S) kf_mbar_wait(empty0 + 8 * s, ((it / S) - 1) & 1);
                const uint32_t sa = sbase + s * STAGE_BYTES, full = full0 + 8 * s;
                kf_mbar_arrive_expect(full, STAGE_BYTES);
                kf_tma2(sa, TA, kt * 64, tm * BM, full);
                kf_tma2(sa + A_BYTES, TB, tn * BN, kt * 64, full);
            }
        }
        return;
    }

    /* ---- the consumers */
    kf_setmaxnreg_inc<KF_MM_CONSUMER_REGS>();
    const int cw = wg - 1, wq = (threadIdx.x >> 5) & 3, t4 = lane & 3;
    const int nl = 64 * cw + 16 * wq + 2 * (lane >> 2);
    enum { D = 1 }; /* stages left in flight after issuing one (2: no faster on the H200) */
    int it = 0;
    float d[BM / 2];
    uint32_t fr[D + 1][16];
    for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
        int tm, tn;
        kf_mm_tile((int)t, nm, nn, &tm, &tn, KF_MM_GROUP);
        const int64_t m0 = (int64_t)tm * BM, n0 = (int64_t)tn * BN;
#pragma unroll
        for (int i = 0; i < BM / 2; i++) d[i] = 0.0f;
        auto stage = [&](uint32_t(&f)[16], int kt) {
            const int s = it % S;
            kf_mbar_wait(full0 + 8 * s, (it / S) & 1);
            const uint32_t sa = sbase + s * STAGE_BYTES;
            const int64_t k0 = (int64_t)kt * 64;
            if (n0 + BN <= N && k0 + 64 <= K) KF_MM_CAT(KF_MM_FN, _rt_frag)<true>(B, f, sa + A_BYTES, k0, n0 + nl, nl, t4);
            else KF_MM_CAT(KF_MM_FN, _rt_frag)<false>(B, f, sa + A_BYTES, k0, n0 + nl, nl, t4);
            const uint64_t db = kf_wg_desc(sa, 16, 1024);
            kf_wg_fence();
#pragma unroll
            for (int kk = 0; kk < 4; kk++) kf_wgmma_n256_ra(d, f + 4 * kk, db + kk * 2);
            kf_wg_commit();
            kf_wg_wait<D>();
            if (kt >= D) kf_mbar_arrive(empty0 + 8 * ((it - D) % S));
            it++;
        };
        for (int kt = 0; kt < KT; kt += D + 1) {
#pragma unroll
            for (int u = 0; u <= D; u++)
                if (kt + u < KT) stage(fr[u], kt + u);
        }
        kf_wg_wait<0>();
        for (int kt = KT > D ? KT - D : 0; kt < KT; kt++) kf_mbar_arrive(empty0 + 8 * ((it - KT + kt) % S));
#pragma unroll
        for (int i = 0; i < BM / 2; i++) kf_reg_fence(d[i]);
        KF_MM_CAT(KF_MM_FN, _rt_epi)(B, d, m0, n0 + 64 * cw, lane, sbase + S * STAGE_BYTES + cw * 8192, 3 + cw);
    }
}
#else
extern "C" __global__ void KF_MM_CLUSTER __launch_bounds__(KF_MM_NT, KF_MM_CTAS)
    KF_MM_FN(const __grid_constant__ kf_bufs B, const __grid_constant__ kf_tmap TA, const __grid_constant__ kf_tmap TB)
{
    enum {
        BM = KF_MM_BM, BN = KF_MM_BN, S = KF_MM_STAGES, NC = BM / 64, BCH = BN / 8, NP = 128,
        A_BYTES = BM * 128, B_BYTES = (BN / 64) * 8192, STAGE_BYTES = A_BYTES + B_BYTES, NACC = BN / 2,
        PP = KF_MM_WGMMA == 4, MH = PP ? NC : 1 /* row blocks of 64 a consumer */,
        P = KF_MM_PAIR
    };
    static_assert(KF_MM_BK == 64 && BM % 64 == 0 && (BN == 128 || BN == 256) && S >= 2, "wgmma tile");
    static_assert(BM == 128 && (BM * 8 / NP) % KF_MM_WS_G == 0 && (64 * BCH / NP) % KF_MM_WS_G == 0,
                  "producer tile loads, register split");
    extern __shared__ __align__(1024) unsigned char kf_smem[];
    /* full, empty; ping-pong's turns; raw slots */
    __shared__ __align__(8) uint64_t kf_bars[2 * S + 2 + KF_MM_RAW_R];
    const int64_t M = KF_MM_M, N = KF_MM_N, K = KF_MM_K;
    const int nm = (int)((M + BM - 1) / BM), nn = (int)((N + BN - 1) / BN), KT = (int)((K + 63) / 64);
    /* the tiles a block walks: with pairs, tiles of P row blocks, of which
     * this block takes row block rank (past M in the last pair of an odd
     * count: its loads are zeros, its epilogue stores nothing) */
    const int nmp = (nm + P - 1) / P, rank = (int)(blockIdx.x % P), first = (int)(blockIdx.x / P),
              step = (int)(gridDim.x / P);
    const int64_t per_batch = (int64_t)nmp * nn, tiles = per_batch * KF_MM_BATCH;
    const int wg = threadIdx.x >> 7, tid = threadIdx.x & 127, lane = threadIdx.x & 31;
    /* tile t of the walk: its batch b and its first row m0 and column n0 */
    auto tile_at = [&](int64_t t, int64_t &b, int64_t &m0, int64_t &n0) {
        int tm, tn;
        b = t / per_batch;
        kf_mm_tile((int)(t % per_batch), nmp, nn, &tm, &tn, KF_MM_GROUP);
        m0 = (int64_t)(tm * P + rank) * BM, n0 = (int64_t)tn * BN;
    };
    /* the swizzle acts on address bits 4-9: stages start on 1024 bytes */
    const uint32_t sbase = (kf_smem_u32(kf_smem) + 1023u) & ~1023u;
    const uint32_t full0 = kf_smem_u32(&kf_bars[0]), empty0 = kf_smem_u32(&kf_bars[S]);
    (void)TA;
    (void)TB;
#if defined(KF_MM_A_TMA) && defined(KF_MM_B_TMA)
    const int producers = 1;
#else
    const int producers = NP;
#endif
    if (threadIdx.x == 0) {
        for (int s = 0; s < S; s++) {
            kf_mbar_init(full0 + 8 * s, producers);
            kf_mbar_init(empty0 + 8 * s, P > 1 ? P * NC * 4 : (PP ? 1 : NC) * 128);
        }
        if (PP) {
            kf_mbar_init(empty0 + 8 * S, 128);
            kf_mbar_init(empty0 + 8 * S + 8, 128);
        }
        for (int s = 0; s < KF_MM_RAW_R; s++) kf_mbar_init(full0 + 8 * (2 * S + 2 + s), 1);
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    if (P > 1) kf_cluster_sync(); /* the peer's barriers ready before anything lands there */
    else __syncthreads();

#ifdef KF_MM_A_TMA
    enum { TMA_A = A_BYTES };
#else
    enum { TMA_A = 0 };
#endif
#ifdef KF_MM_B_TMA
    enum { TMA_BYTES = TMA_A + B_BYTES };
#else
    enum { TMA_BYTES = TMA_A };
#endif
    /* the plain operands' tile loads of k tile k0 of tile (b, m0, n0) into
     * the stage at sa (A) and sb (B), completing on barrier full */
    auto tma_plain = [&](uint32_t sa, uint32_t sb, uint32_t full, int64_t b, int64_t m0, int64_t n0, int64_t k0) {
        (void)sa, (void)sb, (void)full, (void)b, (void)m0, (void)n0, (void)k0;
#ifdef KF_MM_A_TMA
        kf_tma<KF_MM_A_TMA>(sa, TA, (int)k0, (int)m0, b, full);
#endif
#ifdef KF_MM_B_TMA
        if (P > 1) {
#pragma unroll
            for (int j = rank * (BN / 64 / P); j < (rank + 1) * (BN / 64 / P); j++)
                kf_tma_mc<KF_MM_B_TMA>(sb + j * 8192, TB, (int)n0 + 64 * j, (int)k0, b, full, (1u << P) - 1);
        } else {
#pragma unroll
            for (int j = 0; j < BN / 64; j++) kf_tma<KF_MM_B_TMA>(sb + j * 8192, TB, (int)n0 + 64 * j, (int)k0, b, full);
        }
#endif
    };
    (void)tma_plain;

    if (KF_MM_NPRO ? wg < KF_MM_NPRO : wg == NC) {
        /* ---- the producers */
#ifdef KF_MM_PRODUCER_REGS
        kf_setmaxnreg_dec<KF_MM_PRODUCER_REGS>();
#endif
        if (producers == 1 && tid != 0) return;
        int it = 0;
#ifdef KF_MM_RAW
        {
            /* raw staging (see _raw_tile above): R slots after the stages and the staged tile */
#ifdef KF_MM_A_RAW
            typedef KF_MM_A_RAW_T TRA;
#else
            typedef uint8_t TRA;
#endif
#ifdef KF_MM_B_RAW
            typedef KF_MM_B_RAW_T TRB;
#else
            typedef uint8_t TRB;
#endif
            enum {
#ifdef KF_MM_A_RAW
                RA = BM * 64 * (int)sizeof(TRA),
#else
                RA = 0,
#endif
#ifdef KF_MM_B_RAW
                RB = 64 * BN * (int)sizeof(TRB),
#else
                RB = 0,
#endif
                RAW_BYTES = RA + RB, R = KF_MM_RAW_SLOTS
            };
            const uint32_t rbase = sbase + S * STAGE_BYTES + (KF_MM_WGMMA == 3 ? BM * BN * 2 : 0);
            const uint32_t rfull0 = full0 + 8 * (2 * S + 2);
            /* iteration j: tile first + (j / KT) step, k tile j % KT, slot j % R */
            auto issue = [&](int j) {
                const int64_t t = first + (int64_t)(j / KT) * step;
                if (t >= tiles) return;
                int64_t b, m0, n0;
                tile_at(t, b, m0, n0);
                const int k0 = (j % KT) * 64, s = j % R;
                const uint32_t rf = rfull0 + 8 * s, sr = rbase + s * RAW_BYTES;
                (void)b, (void)k0, (void)m0, (void)n0, (void)sr;
                kf_mbar_arrive_expect(rf, RAW_BYTES);
#ifdef KF_MM_A_RAW
                kf_tma<KF_MM_A_RAW>(sr, TA, k0, m0, b, rf);
#endif
#ifdef KF_MM_B_RAW
                kf_tma<KF_MM_B_RAW>(sr + RA, TB, n0, k0, b, rf);
#endif
            };
            if (tid == 0)
                for (int j = 0; j < R; j++) issue(j);
            for (int64_t t = first; t < tiles; t += step) {
                int64_t b, m0, n0;
                tile_at(t, b, m0, n0);
                for (int kt = 0; kt < KT; kt++, it++) {
                    const int s = it % S;
                    if (it >= S) kf_mbar_wait(empty0 + 8 * s, ((it / S) - 1) & 1);
                    const uint32_t sa = sbase + s * STAGE_BYTES, sb = sa + A_BYTES, full = full0 + 8 * s;
                    const uint32_t sr = rbase + (it % R) * RAW_BYTES;
                    const int64_t k0 = (int64_t)kt * 64;
                    (void)sr;
                    if (TMA_BYTES && tid == 0) {
                        kf_mbar_expect(full, TMA_BYTES);
                        tma_plain(sa, sb, full, b, m0, n0, k0);
                    }
                    kf_mbar_wait(rfull0 + 8 * (it % R), (it / R) & 1);
                    const bool in = m0 + BM <= M && n0 + BN <= N && k0 + 64 <= K;
                    (void)in;
#ifdef KF_MM_A_RAW
                    if (in) KF_MM_CAT(KF_MM_FN, _raw_tile)<0, BM, BN, true, TRA>(B, b, sr, sa, m0, k0, tid);
                    else KF_MM_CAT(KF_MM_FN, _raw_tile)<0, BM, BN, false, TRA>(B, b, sr, sa, m0, k0, tid);
#endif
#ifdef KF_MM_B_RAW
                    if (in) KF_MM_CAT(KF_MM_FN, _raw_tile)<1, BM, BN, true, TRB>(B, b, sr + RA, sb, k0, n0, tid);
                    else KF_MM_CAT(KF_MM_FN, _raw_tile)<1, BM, BN, false, TRB>(B, b, sr + RA, sb, k0, n0, tid);
#endif
                    kf_fence_async_smem(); /* the stores, read next by the tensor cores */
                    kf_mbar_arrive(full);
                    kf_bar_producers(); /* every producer done with the raw slot */
                    if (tid == 0) issue(it + R);
                }
            }
            return;
        }
#endif
        for (int64_t t = first; t < tiles; t += step) {
            int64_t b, m0, n0;
            tile_at(t, b, m0, n0);
            for (int kt = 0; kt < KT; kt++, it++) {
                if (KF_MM_NPRO > 1 && it % KF_MM_NPRO != wg) continue; /* the other's stage */
                const int s = it % S;
                if (it >= S) kf_mbar_wait(empty0 + 8 * s, ((it / S) - 1) & 1);
                const uint32_t sa = sbase + s * STAGE_BYTES, sb = sa + A_BYTES, full = full0 + 8 * s;
                const int64_t k0 = (int64_t)kt * 64;
                (void)sb;
                (void)full;
                (void)k0;
                if (TMA_BYTES && tid == 0) {
                    if (producers == 1) kf_mbar_arrive_expect(full, TMA_BYTES);
                    else kf_mbar_expect(full, TMA_BYTES);
                    tma_plain(sa, sb, full, b, m0, n0, k0);
                }
#ifndef KF_MM_A_TMA
                if (m0 + BM <= M && k0 + 64 <= K) {
                    /* inside: no branch between the chunks, so that the
                     * loads of G chunks are issued before the first store */
#pragma unroll
                    for (int i0 = 0; i0 < BM * 8 / NP; i0 += KF_MM_WS_G) {
                        float v[KF_MM_WS_G][8];
#pragma unroll
                        for (int i = 0; i < KF_MM_WS_G; i++) {
                            int idx = tid + (i0 + i) * NP;
                            KF_MM_CHUNK(0, true, B, b, m0 + (idx >> 3), k0 + (idx & 7) * 8, v[i]);
                        }
#pragma unroll
                        for (int i = 0; i < KF_MM_WS_G; i++) {
                            int idx = tid + (i0 + i) * NP, r = idx >> 3, c = idx & 7;
                            kf_st_shared16(sa + r * 128 + ((c ^ (r & 7)) << 4), v[i]);
                        }
                    }
                } else {
                    for (int i = 0; i < BM * 8 / NP; i++) {
                        int idx = tid + i * NP, r = idx >> 3, c = idx & 7;
                        float v[8];
                        KF_MM_CHUNK(0, false, B, b, m0 + r, k0 + c * 8, v);
                        kf_st_shared16(sa + r * 128 + ((c ^ (r & 7)) << 4), v);
                    }
                }
#endif
#ifndef KF_MM_B_TMA
                if (n0 + BN <= N && k0 + 64 <= K) {
#pragma unroll
                    for (int i0 = 0; i0 < 64 * BCH / NP; i0 += KF_MM_WS_G) {
                        float v[KF_MM_WS_G][8];
#pragma unroll
                        for (int i = 0; i < KF_MM_WS_G; i++) {
                            int idx = tid + (i0 + i) * NP;
                            KF_MM_CHUNK(1, true, B, b, k0 + idx / BCH, n0 + (idx % BCH) * 8, v[i]);
                        }
#pragma unroll
                        for (int i = 0; i < KF_MM_WS_G; i++) {
                            int idx = tid + (i0 + i) * NP, r = idx / BCH, cc = idx % BCH;
                            kf_st_shared16(sb + (cc >> 3) * 8192 + r * 128 + (((cc & 7) ^ (r & 7)) << 4), v[i]);
                        }
                    }
                } else {
                    for (int i = 0; i < 64 * BCH / NP; i++) {
                        int idx = tid + i * NP, r = idx / BCH, cc = idx % BCH;
                        float v[8];
                        KF_MM_CHUNK(1, false, B, b, k0 + r, n0 + cc * 8, v);
                        kf_st_shared16(sb + (cc >> 3) * 8192 + r * 128 + (((cc & 7) ^ (r & 7)) << 4), v);
                    }
                }
#endif
#if !defined(KF_MM_A_TMA) || !defined(KF_MM_B_TMA)
                kf_fence_async_smem(); /* the stores, read next by the tensor cores */
                kf_mbar_arrive(full);
#endif
            }
        }
        /* pairs: every stage freed by both blocks' consumers, so that the
         * peer's last arrivals have landed before this block exits */
        for (int j = it; P > 1 && j < it + S; j++)
            if (j >= S) kf_mbar_wait(empty0 + 8 * (j % S), ((j / S) - 1) & 1);
        return;
    }

    /* ---- the consumers */
#ifdef KF_MM_CONSUMER_REGS
    kf_setmaxnreg_inc<KF_MM_CONSUMER_REGS>();
#endif
    const int cw = wg - KF_MM_NPRO;
    int it = 0;
    float d[MH * NACC];
    /* stage s's products done: every consumer thread arrives, or with pairs
     * a warp's first lane on both blocks' barriers */
    auto release = [&](int s) {
        if (P > 1) {
            __syncwarp();
            if (lane == 0)
                for (int r = 0; r < P; r++) kf_mbar_arrive_in(empty0 + 8 * s, (uint32_t)r);
        } else {
            kf_mbar_arrive(empty0 + 8 * s);
        }
    };
    /* ping-pong: this warpgroup's turn barrier (turn0 + 8 cw: the other's
     * products on the block's previous tile all issued), the block's tiles
     * seen (L) and this warpgroup's own (j) */
    const uint32_t turn0 = empty0 + 8 * S;
    int64_t L = -1;
    int j = 0;
    (void)turn0;
    (void)j;
#if KF_MM_WGMMA == 3
    /* the staged tile (b, m0, n0 of pm, pn; pm < 0: none), the chunks of it
     * this thread has left (q = cid + i * NC * 128, i from done to Q) */
    enum { Q = BM * BCH / (NC * 128) };
    const uint32_t stg = sbase + S * STAGE_BYTES;
    const int cid = threadIdx.x - KF_MM_NPRO * 128;
    int64_t pb = 0, pm = -1, pn = 0;
    int done = Q;
#endif
    for (int64_t t = first; t < tiles; t += step) {
        int64_t b, m0, n0;
        tile_at(t, b, m0, n0);
        if (PP) {
            if ((++L & 1) != cw) continue;
            it = (int)(L * KT);
            if (L > 0) kf_mbar_wait(turn0 + 8 * cw, (cw ? j : j - 1) & 1);
        }
#pragma unroll
        for (int i = 0; i < MH * NACC; i++) d[i] = 0.0f;
        int pend = -1; /* the stage whose products are still in flight */
        for (int kt = 0; kt < KT; kt++, it++) {
            const int s = it % S;
            kf_mbar_wait(full0 + 8 * s, (it / S) & 1);
            const uint32_t st = sbase + s * STAGE_BYTES, sa = st + (PP ? 0 : cw * 64 * 128), sb = st + A_BYTES;
            kf_wg_stage<BN, KF_MM_BF16, MH>(d, sa, sb);
#if KF_MM_WGMMA == 3
            /* the previous tile's epilogue, spread over this tile's k steps */
            for (const int upto = (int)(((int64_t)(kt + 1) * Q) / KT); done < upto; done++)
                KF_MM_CAT(KF_MM_FN, _stg_epi)<BN>(B, pb, stg, pm, pn, cid + done * NC * 128);
#endif
            kf_wg_wait<1>();
            if (pend >= 0) release(pend);
            pend = s;
        }
        if (PP) {
            kf_mbar_arrive(turn0 + 8 * (1 - cw)); /* the other's turn */
            j++;
        }
        kf_wg_wait<0>();
        if (pend >= 0) release(pend);
#pragma unroll
        for (int i = 0; i < MH * NACC; i++) kf_reg_fence(d[i]);
#if KF_MM_WGMMA == 3
        for (; done < Q; done++) KF_MM_CAT(KF_MM_FN, _stg_epi)<BN>(B, pb, stg, pm, pn, cid + done * NC * 128);
        kf_bar_consumers<NC * 128>(); /* every chunk of the staged tile read */
        KF_MM_CAT(KF_MM_FN, _stg_put)<BN>(stg, d, cw * 64 + ((threadIdx.x >> 5) & 3) * 16, lane);
        kf_bar_consumers<NC * 128>(); /* this tile staged */
        pb = b, pm = m0, pn = n0, done = 0;
#elif KF_MM_WGMMA == 6 && KF_MM_EPI8
        /* each consumer warp's 2 KB slice after the stages */
        KF_MM_CAT(KF_MM_FN, _wg_epi_smem)<BN>(B, b, d, m0 + cw * 64, n0, lane,
                                              sbase + S * STAGE_BYTES + (uint32_t)(threadIdx.x / 32 - KF_MM_NPRO * 4) * 2048);
#else
#pragma unroll
        for (int h = 0; h < MH; h++)
            KF_MM_CAT(KF_MM_FN, _wg_epi)<BN>(B, b, d + h * NACC, m0 + (PP ? h : cw) * 64, n0, lane);
#endif
    }
#if KF_MM_WGMMA == 3
    for (; done < Q; done++) KF_MM_CAT(KF_MM_FN, _stg_epi)<BN>(B, pb, stg, pm, pn, cid + done * NC * 128);
#endif
}
#endif /* KF_MM_WGMMA == 5 */
#undef KF_MM_NT
#ifdef KF_MM_RAW
#ifdef KF_MM_A_RAW_NONE
#undef KF_MM_LOAD_A_RAW
#undef KF_MM_A_RAW_NONE
#endif
#ifdef KF_MM_B_RAW_NONE
#undef KF_MM_LOAD_B_RAW
#undef KF_MM_B_RAW_NONE
#endif
#if !KF_MM_A_H2
#undef KF_MM_LOAD_A_H2
#endif
#if !KF_MM_B_H2
#undef KF_MM_LOAD_B_H2
#endif
#undef KF_MM_A_H2
#undef KF_MM_B_H2
#endif
#undef KF_MM_RAW
#undef KF_MM_RAW_R
#undef KF_MM_WS_G
#undef KF_MM_NPRO
#undef KF_MM_PRODUCER_REGS
#undef KF_MM_CONSUMER_REGS
#undef KF_MM_CLUSTER
#undef KF_MM_PAIR
#undef KF_MM_GROUP

#elif KF_MM_TC && KF_MM_WGMMA
/* ---------------------------------------------------------------- Hopper: wgmma
 * sm_90a.  Plain operands are staged by cp.async, those with a prologue
 * through registers while the previous tile's products run.  A block of BM / 64
 * warpgroups computes BM x BN, each warpgroup 64 x BN with
 * wgmma.m64nBNk16 (accumulators in registers), k tiles of 64.  Per stage:
 * A as BM rows of 128 bytes (K-major, 128-byte swizzle: chunk c of row r at
 * c ^ (r & 7)); B as BN / 64 blocks of 64 k rows x 128 bytes (N-major, the
 * same swizzle).  Stage kt + S - 2 is loaded while tile kt multiplies; the
 * products of one tile stay in flight while the next is issued
 * (wgmma.wait_group 1), so a stage is rewritten only two tiles after its
 * products were issued, behind a barrier. */
#define KF_MM_NT ((KF_MM_BM / 64) * 128)
extern "C" __global__ void __launch_bounds__(KF_MM_NT, 1) KF_MM_FN(const __grid_constant__ kf_bufs B)
{
    enum {
        BM = KF_MM_BM, BN = KF_MM_BN, S = KF_MM_STAGES, NT = KF_MM_NT, BCH = BN / 8,
        A_BYTES = BM * 128, B_BYTES = (BN / 64) * 8192, STAGE_BYTES = A_BYTES + B_BYTES,
        A_CHUNKS = BM * 8, B_CHUNKS = 64 * BCH, A_PER = A_CHUNKS / NT, B_PER = B_CHUNKS / NT, NACC = BN / 2
    };
    static_assert(KF_MM_BK == 64 && BM % 64 == 0 && (BN == 128 || BN == 256) && S >= 3, "wgmma tile");
    static_assert(A_CHUNKS % NT == 0 && B_CHUNKS % NT == 0, "wgmma tile loads");
    extern __shared__ __align__(1024) unsigned char kf_smem[];
    const int64_t M = KF_MM_M, N = KF_MM_N, K = KF_MM_K;
    const int nm = (int)((M + BM - 1) / BM), nn = (int)((N + BN - 1) / BN);
    int tm, tn;
    kf_mm_tile((int)blockIdx.x, nm, nn, &tm, &tn);
    const int64_t b = blockIdx.y;
    const int64_t m0 = (int64_t)tm * BM, n0 = (int64_t)tn * BN;
    const int tid = threadIdx.x, lane = tid & 31, wg = tid >> 7, wq = (tid >> 5) & 3;
    /* the swizzle acts on address bits 4-9: stages start on 1024 bytes */
    const uint32_t sbase = (kf_smem_u32(kf_smem) + 1023u) & ~1023u;
    const int KT = (int)((K + 63) / 64);
#ifdef KF_MM_A_PTR
    const uint16_t *KF_RESTRICT ap = KF_MM_A_PTR(B, b);
#endif
#ifdef KF_MM_B_PTR
    const uint16_t *KF_RESTRICT bp = KF_MM_B_PTR(B, b);
#endif

    /* k tile kt -> stage: plain operands by cp.async (async = 1), operands
     * with a prologue (async = 0) through registers: 8 consecutive values a
     * thread, their loads merged into vectors where the sources are
     * contiguous, the prologue applied, packed and stored to the same
     * swizzled place (then fenced for the tensor cores' proxy) */
    auto load_tile = [&](int kt, int stage, bool async) {
        const int64_t k0 = (int64_t)kt * 64;
        const uint32_t sa = sbase + stage * STAGE_BYTES, sb = sa + A_BYTES;
        (void)sb;
        (void)async;
#pragma unroll
        for (int i = 0; i < A_PER; i++) {
            int idx = tid + i * NT, r = idx >> 3, c = idx & 7;
            int64_t gm = m0 + r, gk = k0 + c * 8;
            uint32_t dst = sa + r * 128 + ((c ^ (r & 7)) << 4);
#ifdef KF_MM_A_PTR
            bool ok = gm < M && gk < K;
            if (async) kf_cp_async16(dst, ok ? ap + gm * K + gk : ap, ok);
#else
            if (!async) {
                float v[8];
                KF_MM_CHUNK(0, false, B, b, gm, gk, v);
                kf_st_shared16(dst, v);
            }
#endif
        }
#pragma unroll
        for (int i = 0; i < B_PER; i++) {
            int idx = tid + i * NT, r = idx / BCH, cc = idx % BCH;
            int64_t gk = k0 + r, gn = n0 + cc * 8;
            uint32_t dst = sb + (cc >> 3) * 8192 + r * 128 + (((cc & 7) ^ (r & 7)) << 4);
#ifdef KF_MM_B_PTR
            bool ok = gk < K && gn < N;
            if (async) kf_cp_async16(dst, ok ? bp + gk * N + gn : bp, ok);
#else
            if (!async) {
                float v[8];
                KF_MM_CHUNK(1, false, B, b, gk, gn, v);
                kf_st_shared16(dst, v);
            }
#endif
        }
#if !defined(KF_MM_A_PTR) || !defined(KF_MM_B_PTR)
        if (!async) kf_fence_async_smem();
#endif
    };
#if defined(KF_MM_A_PTR) && defined(KF_MM_B_PTR)
    const bool regs = false;
#else
    const bool regs = true;
#endif

    float d[NACC];
#pragma unroll
    for (int i = 0; i < NACC; i++) d[i] = 0.0f;
#pragma unroll
    for (int s = 0; s < S - 2; s++) {
        if (s < KT) {
            load_tile(s, s, true);
            if (regs) load_tile(s, s, false);
        }
        kf_cp_async_commit();
    }
    for (int kt = 0; kt < KT; kt++) {
        kf_cp_async_wait<S - 3>();
        kf_fence_async_smem(); /* cp.async's writes, read next by the tensor cores */
        __syncthreads();
        const int nk = kt + S - 2;
        if (nk < KT) load_tile(nk, nk % S, true);
        kf_cp_async_commit();
        const uint32_t st = sbase + (kt % S) * STAGE_BYTES, sa = st + wg * 64 * 128, sb = st + A_BYTES;
        kf_wg_stage<BN, KF_MM_BF16>(d, sa, sb);
        /* an operand with a prologue: computed while the products run */
        if (regs && nk < KT) load_tile(nk, nk % S, false);
        kf_wg_wait<1>();
    }
    kf_wg_wait<0>();
    kf_cp_async_wait<0>();
#pragma unroll
    for (int i = 0; i < NACC; i++) kf_reg_fence(d[i]);
    KF_MM_CAT(KF_MM_FN, _wg_epi)<BN>(B, b, d, m0 + wg * 64, n0, lane);
}
#undef KF_MM_NT

#elif KF_MM_TC
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
        CPAD = BN + 4, KK = BK / 16
    };
    static_assert(KK % 2 == 0, "BK must be a multiple of 32 (fragment double buffering)");
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
                KF_MM_CHUNK(0, false, B, b, gm, gk, v);
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
                KF_MM_CHUNK(1, false, B, b, gk, gn, v);
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
        kf_st_chunks<A_PER, A_CHUNKS, ACH, NT>(sa, areg, tid);
#endif
#ifndef KF_MM_B_PTR
        kf_st_chunks<B_PER, B_CHUNKS, BCH, NT>(sb, breg, tid);
#endif
    };

    float acc[MI][NI][4];
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++)
#pragma unroll
            for (int q = 0; q < 4; q++) acc[i][j][q] = 0.0f;

    /* shared -> registers: the A and B fragments of k step kk of a stage */
    auto load_frags = [&](int stage, int kk, uint32_t(&af)[MI][4], uint32_t(&bf)[NI][2]) {
        const uint32_t sa = sbase + stage * STAGE_BYTES, sb = sa + A_BYTES;
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
    };

#pragma unroll
    for (int s = 0; s < S - 1; s++) {
        if (s < KT) {
            load_tile(s, s);
            store_tile(s);
        }
        kf_cp_async_commit();
    }
    kf_cp_async_wait<S - 2>();
    __syncthreads();
    /* The main loop (as CUTLASS's multistage one): fragments double-buffered
     * in registers across k steps, one barrier per k tile.  At the last k
     * step of tile kt, the next stage is waited for and its first fragments
     * loaded before the step's products; tile kt + S - 1 is issued at the
     * first k step into the stage that tile kt - 1 used (free since the
     * barrier that ended tile kt - 1). */
    uint32_t af[2][MI][4], bf[2][NI][2];
    int rs = 0, ws = S - 1; /* the stage read, the stage written */
    load_frags(0, 0, af[0], bf[0]);
    for (int kt = 0; kt < KT; kt++) {
        const int nk = kt + S - 1;
#pragma unroll
        for (int kk = 0; kk < KK; kk++) {
            if (kk == KK - 1) {
                if (S < 3 && nk < KT) store_tile(ws);
                kf_cp_async_wait<S - 2>();
                __syncthreads();
                rs = rs == S - 1 ? 0 : rs + 1;
                ws = ws == S - 1 ? 0 : ws + 1;
            }
            load_frags(rs, (kk + 1) % KK, af[(kk + 1) & 1], bf[(kk + 1) & 1]);
            if (kk == 0) {
                /* an operand with a prologue: the registers loaded a tile ago
                 * go to their stage (read only after the barrier that ends
                 * tile nk - 2 >= kt when S >= 3), then the next loads are
                 * issued, to land behind a whole tile of products */
                if (S >= 3 && kt > 0 && nk - 1 < KT) store_tile(ws == 0 ? S - 1 : ws - 1);
                if (nk < KT) load_tile(nk, ws);
                kf_cp_async_commit();
            }
#pragma unroll
            for (int i = 0; i < MI; i++)
#pragma unroll
                for (int j = 0; j < NI; j++) kf_mma16816<KF_MM_BF16>(acc[i][j], af[kk & 1][i], bf[kk & 1][j]);
        }
    }
    kf_cp_async_wait<0>();
#if KF_MM_DIRECT_EPI && KF_MM_EPI8 && KF_MM_WN % 32 == 0
    /* 8-wide: a quad's four fragments of 8 columns transposed through
     * shuffles, then each lane stores 8 consecutive columns of its row */
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int t = 0; t < NI / 4; t++) {
            float x[2][4][2]; /* rows lane / 4 and 8 more */
#pragma unroll
            for (int h = 0; h < 2; h++)
#pragma unroll
                for (int g = 0; g < 4; g++) {
                    x[h][g][0] = acc[i][4 * t + g][2 * h];
                    x[h][g][1] = acc[i][4 * t + g][2 * h + 1];
                }
            KF_MM_PUT_ROWS(B, b, x[0], x[1], m0 + wm0 + i * 16 + (lane >> 2), n0 + wn0 + (4 * t + (lane & 3)) * 8,
                           lane);
        }
#elif KF_MM_DIRECT_EPI
    /* the epilogue straight from the fragments (no shared-memory pass) */
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                /* two neighbouring columns: unconditional when both are in,
                 * so that the compiler can pair their loads and stores */
                int64_t m = m0 + wm0 + i * 16 + (lane >> 2) + h * 8, n = n0 + wn0 + j * 8 + (lane & 3) * 2;
                if (m < M && n + 1 < N) {
                    KF_MM_STORE(B, b, m, n, acc[i][j][2 * h]);
                    KF_MM_STORE(B, b, m, n + 1, acc[i][j][2 * h + 1]);
                } else if (m < M && n < N) {
                    KF_MM_STORE(B, b, m, n, acc[i][j][2 * h]);
                }
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

#undef KF_MM_CHUNK
