/*
 * cuda.c - the CUDA JIT and runtime (see cuda.h).  The driver API and NVRTC
 * are reached through dlopen with their types declared here, so building
 * kfuse needs no CUDA headers.  Cubins are cached in the C JIT's cache
 * directory, keyed by a hash of the source, NVRTC's version and the options.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cuda.h"
#include "jit.h"

/* ---- the parts of cuda.h and nvrtc.h used here ---- */
typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef unsigned long long CUdeviceptr;
enum {
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
    CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8
};
/* a tensor map: 128 opaque bytes; the enum values of cuTensorMapEncodeTiled */
typedef struct {
    _Alignas(128) uint64_t q[16];
} CUtensorMap;
/* (the data type and the swizzle come from the code generator: kf_cuda_tmap) */
enum {
    CU_TENSOR_MAP_INTERLEAVE_NONE = 0,
    CU_TENSOR_MAP_L2_PROMOTION_L2_256B = 3,
    CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE = 0
};
typedef int nvrtcResult;
typedef struct _nvrtcProgram *nvrtcProgram;

static struct {
    void *lib;
    CUresult (*Init)(unsigned);
    CUresult (*DeviceGet)(CUdevice *, int);
    CUresult (*DeviceGetCount)(int *);
    CUresult (*DeviceGetName)(char *, int, CUdevice);
    CUresult (*DeviceGetAttribute)(int *, int, CUdevice);
    CUresult (*PrimaryCtxRetain)(CUcontext *, CUdevice);
    CUresult (*CtxSetCurrent)(CUcontext);
    CUresult (*CtxSynchronize)(void);
    CUresult (*ModuleLoadData)(CUmodule *, const void *);
    CUresult (*ModuleUnload)(CUmodule);
    CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
    CUresult (*FuncSetAttribute)(CUfunction, int, int);
    CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                             CUstream, void **, void **);
    CUresult (*MemAlloc)(CUdeviceptr *, size_t);
    CUresult (*MemFree)(CUdeviceptr);
    CUresult (*MemcpyHtoD)(CUdeviceptr, const void *, size_t);
    CUresult (*MemcpyDtoH)(void *, CUdeviceptr, size_t);
    CUresult (*EventCreate)(CUevent *, unsigned);
    CUresult (*EventRecord)(CUevent, CUstream);
    CUresult (*EventSynchronize)(CUevent);
    CUresult (*EventElapsedTime)(float *, CUevent, CUevent);
    CUresult (*EventDestroy)(CUevent);
    CUresult (*GetErrorString)(CUresult, const char **);
    CUresult (*TensorMapEncodeTiled)(CUtensorMap *, int, unsigned, void *, const uint64_t *, const uint64_t *,
                                     const unsigned *, const unsigned *, int, int, int, int);
    CUcontext cuctx;
    kf_cuda_dev dev;
    bool ready;
} cu;

static struct {
    void *lib;
    nvrtcResult (*Version)(int *, int *);
    nvrtcResult (*CreateProgram)(nvrtcProgram *, const char *, const char *, int, const char *const *,
                                 const char *const *);
    nvrtcResult (*CompileProgram)(nvrtcProgram, int, const char *const *);
    nvrtcResult (*GetProgramLogSize)(nvrtcProgram, size_t *);
    nvrtcResult (*GetProgramLog)(nvrtcProgram, char *);
    nvrtcResult (*GetCUBINSize)(nvrtcProgram, size_t *);
    nvrtcResult (*GetCUBIN)(nvrtcProgram, char *);
    nvrtcResult (*GetPTXSize)(nvrtcProgram, size_t *);
    nvrtcResult (*GetPTX)(nvrtcProgram, char *);
    nvrtcResult (*DestroyProgram)(nvrtcProgram *);
    const char *(*GetErrorString)(nvrtcResult);
    int major, minor;
} nv;

static const char *cu_errstr(CUresult r)
{
    const char *s = NULL;
    if (cu.GetErrorString) cu.GetErrorString(r, &s);
    return s ? s : "unknown CUDA error";
}

static int cu_check(kf_ctx *ctx, CUresult r, const char *what)
{
    if (r == 0) return 0;
    kf_err(ctx, KF_ERR_RUNTIME, "error: CUDA: %s failed: %s (%d)", what, cu_errstr(r), r);
    return -1;
}

static void *open_first(const char *const *names, char *tried, size_t sz)
{
    size_t n = 0;
    tried[0] = 0;
    for (int i = 0; names[i]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
        int w = snprintf(tried + n, sz - n, "%s%s", i ? ", " : "", names[i]);
        if (w > 0 && (size_t)w < sz - n) n += (size_t)w;
    }
    return NULL;
}

#define SYM(tab, field, name)                                                           \
    do {                                                                                \
        *(void **)&tab.field = dlsym(tab.lib, name);                                    \
        if (!tab.field) {                                                               \
            kf_err(ctx, KF_ERR_UNSUPPORTED, "error: CUDA: %s lacks %s", libname, name); \
            return -1;                                                                  \
        }                                                                               \
    } while (0)

int kf_cuda_nvrtc_load(kf_ctx *ctx)
{
    if (nv.lib) return 0;
    static const char *const names[] = {"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12",
                                        "/usr/local/cuda/lib64/libnvrtc.so", NULL};
    char tried[512];
    const char *libname = "libnvrtc";
    nv.lib = open_first(names, tried, sizeof tried);
    if (!nv.lib) {
        kf_err(ctx, KF_ERR_UNSUPPORTED, "error: the CUDA target needs NVRTC, which could not be loaded (tried %s)",
               tried);
        return -1;
    }
    SYM(nv, Version, "nvrtcVersion");
    SYM(nv, CreateProgram, "nvrtcCreateProgram");
    SYM(nv, CompileProgram, "nvrtcCompileProgram");
    SYM(nv, GetProgramLogSize, "nvrtcGetProgramLogSize");
    SYM(nv, GetProgramLog, "nvrtcGetProgramLog");
    SYM(nv, GetCUBINSize, "nvrtcGetCUBINSize");
    SYM(nv, GetCUBIN, "nvrtcGetCUBIN");
    SYM(nv, GetPTXSize, "nvrtcGetPTXSize");
    SYM(nv, GetPTX, "nvrtcGetPTX");
    SYM(nv, DestroyProgram, "nvrtcDestroyProgram");
    SYM(nv, GetErrorString, "nvrtcGetErrorString");
    nv.Version(&nv.major, &nv.minor);
    return 0;
}

int kf_cuda_init(kf_ctx *ctx, kf_cuda_dev *dev)
{
    if (cu.ready) {
        if (cu_check(ctx, cu.CtxSetCurrent(cu.cuctx), "cuCtxSetCurrent")) return -1;
        if (dev) *dev = cu.dev;
        return 0;
    }
    if (!cu.lib) {
        static const char *const names[] = {"libcuda.so.1", "libcuda.so", NULL};
        char tried[256];
        const char *libname = "libcuda";
        cu.lib = open_first(names, tried, sizeof tried);
        if (!cu.lib) {
            kf_err(ctx, KF_ERR_UNSUPPORTED,
                   "error: the CUDA target needs the NVIDIA driver (libcuda.so.1), which could not be loaded");
            return -1;
        }
        SYM(cu, Init, "cuInit");
        SYM(cu, DeviceGet, "cuDeviceGet");
        SYM(cu, DeviceGetCount, "cuDeviceGetCount");
        SYM(cu, DeviceGetName, "cuDeviceGetName");
        SYM(cu, DeviceGetAttribute, "cuDeviceGetAttribute");
        SYM(cu, PrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
        SYM(cu, CtxSetCurrent, "cuCtxSetCurrent");
        SYM(cu, CtxSynchronize, "cuCtxSynchronize");
        SYM(cu, ModuleLoadData, "cuModuleLoadData");
        SYM(cu, ModuleUnload, "cuModuleUnload");
        SYM(cu, ModuleGetFunction, "cuModuleGetFunction");
        SYM(cu, FuncSetAttribute, "cuFuncSetAttribute");
        SYM(cu, LaunchKernel, "cuLaunchKernel");
        SYM(cu, MemAlloc, "cuMemAlloc_v2");
        SYM(cu, MemFree, "cuMemFree_v2");
        SYM(cu, MemcpyHtoD, "cuMemcpyHtoD_v2");
        SYM(cu, MemcpyDtoH, "cuMemcpyDtoH_v2");
        SYM(cu, EventCreate, "cuEventCreate");
        SYM(cu, EventRecord, "cuEventRecord");
        SYM(cu, EventSynchronize, "cuEventSynchronize");
        SYM(cu, EventElapsedTime, "cuEventElapsedTime");
        SYM(cu, EventDestroy, "cuEventDestroy_v2");
        SYM(cu, GetErrorString, "cuGetErrorString");
        SYM(cu, TensorMapEncodeTiled, "cuTensorMapEncodeTiled");
    }
    int n = 0;
    CUresult r = cu.Init(0);
    if (r == 0) r = cu.DeviceGetCount(&n);
    if (r != 0 || n == 0) {
        kf_err(ctx, KF_ERR_UNSUPPORTED, "error: CUDA: no usable GPU (%s)", r ? cu_errstr(r) : "no devices");
        return -1;
    }
    CUdevice d;
    if (cu_check(ctx, cu.DeviceGet(&d, 0), "cuDeviceGet")) return -1;
    if (cu_check(ctx, cu.PrimaryCtxRetain(&cu.cuctx, d), "cuDevicePrimaryCtxRetain")) return -1;
    if (cu_check(ctx, cu.CtxSetCurrent(cu.cuctx), "cuCtxSetCurrent")) return -1;
    cu.DeviceGetAttribute(&cu.dev.major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, d);
    cu.DeviceGetAttribute(&cu.dev.minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, d);
    cu.DeviceGetAttribute(&cu.dev.nsm, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, d);
    cu.DeviceGetAttribute(&cu.dev.smem_optin, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, d);
    cu.DeviceGetName(cu.dev.name, sizeof cu.dev.name, d);
    if (cu.dev.major < 8) {
        kf_err(ctx, KF_ERR_UNSUPPORTED, "error: CUDA: %s is compute capability %d.%d; kfuse needs 8.0 or newer",
               cu.dev.name, cu.dev.major, cu.dev.minor);
        return -1;
    }
    cu.ready = true;
    if (dev) *dev = cu.dev;
    return 0;
}

static int read_file(const char *path, char **data, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = sz > 0 ? malloc((size_t)sz) : NULL;
    if (!*data || fread(*data, 1, (size_t)sz, f) != (size_t)sz) {
        free(*data);
        *data = NULL;
        fclose(f);
        return -1;
    }
    fclose(f);
    *n = (size_t)sz;
    return 0;
}

int kf_cuda_compile(kf_ctx *ctx, const char *src, const char *cache_dir, int major, int minor, int compile_only,
                    kf_cuda_module *out)
{
    memset(out, 0, sizeof *out);
    if (kf_cuda_nvrtc_load(ctx)) return -1;
    char dir[900], arch[64];
    if (kf_jit_cache_dir(ctx, cache_dir, dir, sizeof dir)) return -1;
    /* sm_90a: Hopper's own instructions (wgmma, setmaxnreg) */
    const char *sfx = major == 9 && minor == 0 ? "a" : "";
    bool ptx = compile_only == 1;
    snprintf(arch, sizeof arch, "--gpu-architecture=%s_%d%d%s", ptx ? "compute" : "sm", major, minor, sfx);
    const char *opts[] = {arch, "-std=c++17", "--device-as-default-execution-space", "-DKF_NVRTC=1"};
    const int nopts = (int)(sizeof opts / sizeof *opts);
    uint64_t h = 0xcbf29ce484222325ULL;
    h = kf_jit_hash(h, &nv.major, sizeof nv.major);
    h = kf_jit_hash(h, &nv.minor, sizeof nv.minor);
    for (int i = 0; i < nopts; i++) h = kf_jit_hash(h, opts[i], strlen(opts[i]) + 1);
    h = kf_jit_hash(h, src, strlen(src));
    snprintf(out->src_path, sizeof out->src_path, "%s/kf_%016llx.cu", dir, (unsigned long long)h);
    snprintf(out->bin_path, sizeof out->bin_path, "%s/kf_%016llx.%s", dir, (unsigned long long)h,
             ptx ? "ptx" : "cubin");
    char *bin = NULL;
    size_t nbin = 0;
    if (read_file(out->bin_path, &bin, &nbin) == 0) {
        out->cached = true;
    } else {
        if (kf_jit_write_file(out->src_path, src, strlen(src))) {
            kf_err(ctx, KF_ERR_IO, "%s: error: cannot write the generated source: %s", out->src_path, strerror(errno));
            return -1;
        }
        nvrtcProgram prog;
        nvrtcResult r = nv.CreateProgram(&prog, src, out->src_path, 0, NULL, NULL);
        if (r) {
            kf_err(ctx, KF_ERR_COMPILE, "%s: error: nvrtcCreateProgram: %s", out->src_path, nv.GetErrorString(r));
            return -1;
        }
        r = nv.CompileProgram(prog, nopts, opts);
        if (r) {
            size_t ln = 0;
            nv.GetProgramLogSize(prog, &ln);
            char *log = malloc(ln + 1);
            if (log) {
                log[0] = 0;
                nv.GetProgramLog(prog, log);
                log[ln] = 0;
            }
            kf_err(ctx, KF_ERR_COMPILE, "%s: error: NVRTC failed to compile the generated CUDA source (%s):\n%.6000s",
                   out->src_path, nv.GetErrorString(r), log ? log : "");
            free(log);
            nv.DestroyProgram(&prog);
            return -1;
        }
        r = ptx ? nv.GetPTXSize(prog, &nbin) : nv.GetCUBINSize(prog, &nbin);
        bin = r ? NULL : malloc(nbin ? nbin : 1);
        if (bin) r = ptx ? nv.GetPTX(prog, bin) : nv.GetCUBIN(prog, bin);
        nv.DestroyProgram(&prog);
        if (!bin || r) {
            free(bin);
            kf_err(ctx, KF_ERR_COMPILE, "%s: error: NVRTC produced no %s", out->src_path, ptx ? "PTX" : "cubin");
            return -1;
        }
        if (ptx && nbin && !bin[nbin - 1]) nbin--; /* the PTX file without its terminator */
        if (kf_jit_write_file(out->bin_path, bin, nbin)) {
            free(bin);
            kf_err(ctx, KF_ERR_IO, "%s: error: cannot store the compiled kernels: %s", out->bin_path, strerror(errno));
            return -1;
        }
    }
    if (compile_only) {
        free(bin);
        return 0;
    }
    CUmodule mod;
    CUresult cr = cu.ModuleLoadData(&mod, bin);
    free(bin);
    if (cr) {
        if (out->cached) unlink(out->bin_path); /* a stale or broken cubin: rebuilt next time */
        kf_err(ctx, KF_ERR_COMPILE, "%s: error: CUDA: cannot load the compiled kernels: %s", out->bin_path,
               cu_errstr(cr));
        return -1;
    }
    out->mod = mod;
    return 0;
}

void kf_cuda_unload(kf_cuda_module *m)
{
    if (m->mod && cu.ModuleUnload) cu.ModuleUnload((CUmodule)m->mod);
    m->mod = NULL;
}

void *kf_cuda_function(kf_ctx *ctx, kf_cuda_module *m, const char *name, unsigned smem)
{
    CUfunction f;
    CUresult r = cu.ModuleGetFunction(&f, (CUmodule)m->mod, name);
    if (r) {
        kf_err(ctx, KF_ERR_COMPILE, "%s: error: CUDA: no kernel %s: %s", m->bin_path, name, cu_errstr(r));
        return NULL;
    }
    if (smem > 48 * 1024) {
        if ((int)smem > cu.dev.smem_optin) {
            kf_err(ctx, KF_ERR_UNSUPPORTED, "error: CUDA: kernel %s needs %u bytes of shared memory, the device has %d",
                   name, smem, cu.dev.smem_optin);
            return NULL;
        }
        if (cu_check(ctx, cu.FuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, (int)smem),
                     "cuFuncSetAttribute"))
            return NULL;
    }
    return f;
}

int kf_cuda_launch(kf_ctx *ctx, void *fn, const unsigned grid[3], const unsigned block[3], unsigned smem, void **args)
{
    if (!grid[0] || !grid[1] || !grid[2]) return 0;
    return cu_check(ctx,
                    cu.LaunchKernel((CUfunction)fn, grid[0], grid[1], grid[2], block[0], block[1], block[2], smem,
                                    NULL, args, NULL),
                    "cuLaunchKernel");
}

int kf_cuda_alloc(kf_ctx *ctx, size_t bytes, uint64_t *dptr)
{
    CUdeviceptr p = 0;
    if (cu_check(ctx, cu.MemAlloc(&p, bytes ? bytes : 1), "cuMemAlloc")) return -1;
    *dptr = p;
    return 0;
}

void kf_cuda_free(uint64_t dptr)
{
    if (dptr && cu.MemFree) cu.MemFree(dptr);
}

int kf_cuda_h2d(kf_ctx *ctx, uint64_t dst, const void *src, size_t bytes)
{
    return bytes ? cu_check(ctx, cu.MemcpyHtoD(dst, src, bytes), "cuMemcpyHtoD") : 0;
}

int kf_cuda_d2h(kf_ctx *ctx, void *dst, uint64_t src, size_t bytes)
{
    return bytes ? cu_check(ctx, cu.MemcpyDtoH(dst, src, bytes), "cuMemcpyDtoH") : 0;
}

int kf_cuda_sync(kf_ctx *ctx) { return cu_check(ctx, cu.CtxSynchronize(), "running the kernels"); }

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Milliseconds of one call of each of n things (launch(ud[j]) runs thing j
 * once), in ms[j]: the median of reps event-timed samples after a warm-up.
 * The samples are taken in rounds, one of each thing a round, so that all
 * are timed in the same state of the GPU: a large product runs into the
 * power limit within a fraction of a second, and the clock a sample gets
 * depends on how busy the GPU was just before it (timed one after the
 * other, the first candidates would run cooler than the last).  Short calls
 * are timed in batches (a sample of about 0.5 ms), so that launch overhead
 * does not hide the differences between candidates.  -1 on error. */
static int time_medians(kf_ctx *ctx, int n, int (*launch)(void *), void *const *ud, int reps, double *ms)
{
    CUevent e0 = NULL, e1 = NULL;
    if (reps > 64) reps = 64;
    float *t = kf_malloc(ctx, sizeof *t * (size_t)(n * reps + 1));
    int *inner = kf_malloc(ctx, sizeof *inner * (size_t)(n + 1));
    int bad = !t || !inner || cu_check(ctx, cu.EventCreate(&e0, 0), "cuEventCreate") ||
              cu_check(ctx, cu.EventCreate(&e1, 0), "cuEventCreate");
    for (int j = 0; j < n && !bad; j++) bad |= launch(ud[j]), inner[j] = 1;
    for (int i = -1; i < reps && !bad; i++)
        for (int j = 0; j < n && !bad; j++) {
            bad |= cu_check(ctx, cu.EventRecord(e0, NULL), "cuEventRecord");
            for (int r = 0; r < inner[j] && !bad; r++) bad |= launch(ud[j]);
            bad |= cu_check(ctx, cu.EventRecord(e1, NULL), "cuEventRecord");
            bad |= cu_check(ctx, cu.EventSynchronize(e1), "running kernels being timed");
            float x = 0;
            if (!bad) bad |= cu_check(ctx, cu.EventElapsedTime(&x, e0, e1), "cuEventElapsedTime");
            if (i < 0) { /* after the warm-up, one call sizes the batches */
                inner[j] = x > 0 && x < 0.5f ? (int)(0.5f / x) : 1;
                if (inner[j] > 50) inner[j] = 50;
                continue;
            }
            t[j * reps + i] = x / (float)inner[j];
        }
    if (e0) cu.EventDestroy(e0);
    if (e1) cu.EventDestroy(e1);
    for (int j = 0; j < n && !bad; j++) {
        qsort(t + j * reps, (size_t)reps, sizeof *t, cmp_float);
        ms[j] = t[j * reps + reps / 2];
    }
    kf_free(ctx, t);
    kf_free(ctx, inner);
    return bad ? -1 : 0;
}

typedef struct one_launch {
    kf_ctx *ctx;
    void *fn;
    const unsigned *grid, *block;
    unsigned smem;
    void **args;
} one_launch;

static int launch_one(void *ud)
{
    one_launch *l = ud;
    return kf_cuda_launch(l->ctx, l->fn, l->grid, l->block, l->smem, l->args) != 0;
}

/* ---- a compiled graph on the device ---------------------------------- */

#include "../codegen/cuda/cudagen.h"

struct kf_cuda_plan {
    kf_ctx *ctx;
    kf_cuda_prog prog;
    kf_cuda_module mod;
    void **fn;             /* per launch: the kernel, NULL when not run */
    uint64_t *own;         /* per slot: the plan's device buffer (scratch: offset applied) */
    uint64_t scratch;
    uint64_t *table;       /* per slot: the pointers a run passes (kf_bufs) */
    CUtensorMap *maps;     /* per launch: 2 tensor maps (kernels that take them),
                              128-byte aligned inside mapmem */
    void *mapmem;
    uint64_t *mapped;      /* per launch: the pointers those maps were encoded for */
    int compile_only;
    bool measures;         /* tuning on: decisions may be timed */
    bool filled;           /* the inputs hold the timing pattern */
    char cache[900];
};

static int64_t slot_bytes(const kf_slot *s)
{
    return s->bytes;
}

/* The argument array of launch i with buffer table `table`: the table, then
 * its tensor maps, (re-)encoded when the pointers they describe changed. */
static int call_args(kf_cuda_plan *p, int i, uint64_t *table, void **args)
{
    kf_cuda_call *l = &p->prog.launch[i];
    args[0] = table;
    for (int j = 0; j < l->ntmap; j++) {
        const kf_cuda_tmap *t = &l->tmap[j];
        CUtensorMap *m = &p->maps[2 * i + j];
        args[1 + j] = m;
        if (t->slot < 0 || p->mapped[2 * i + j] == table[t->slot]) continue;
        const unsigned one[3] = {1, 1, 1};
        CUresult r = cu.TensorMapEncodeTiled(
            m, t->dtype, (unsigned)t->rank, (void *)(uintptr_t)table[t->slot], t->dim, t->stride, t->box, one,
            CU_TENSOR_MAP_INTERLEAVE_NONE, t->swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
        if (cu_check(p->ctx, r, "cuTensorMapEncodeTiled")) return -1;
        p->mapped[2 * i + j] = table[t->slot];
    }
    return 0;
}

/* The plan's own input buffers, and its scratch (an intermediate that a
 * template reads, when the template is timed alone), get a pseudo-random
 * pattern before anything is timed: on zeros the tensor cores draw less
 * power, and the clocks (so the ranking of the candidates) are not those of
 * real data.  Both signs, as real data has: the multipliers toggle more bits
 * and draw more power, and a large product is limited by power. */
static int fill_inputs(kf_cuda_plan *p)
{
    if (p->filled) return 0;
    p->filled = true;
    kf_cuda_prog *g = &p->prog;
    enum { CH = 1 << 20 };
    uint32_t *pat = NULL;
    for (int i = 0; i <= g->prog.nslots; i++) {
        /* the slots, then (i == nslots) the whole scratch allocation */
        kf_slot *sl = i < g->prog.nslots ? &g->prog.slots[i] : NULL;
        const int64_t bytes = sl ? slot_bytes(sl) : g->prog.scratch_bytes;
        const uint64_t dst = sl ? p->own[i] : p->scratch;
        if ((sl && sl->kind != KF_SLOT_INPUT) || bytes <= 0 || !dst) continue;
        if (!pat) {
            if (!(pat = kf_malloc(p->ctx, CH))) return -1;
            uint32_t x = 0x9e3779b9u;
            for (int j = 0; j < CH / 4; j++) {
                x ^= x << 13, x ^= x >> 17, x ^= x << 5;
                /* finite halves and bfloat16s under 1 in magnitude, of
                 * either sign; any bytes for ints */
                pat[j] = x & 0xbbffbbffu;
            }
        }
        for (int64_t off = 0; off < bytes; off += CH) {
            int64_t n = bytes - off < CH ? bytes - off : CH;
            if (kf_cuda_h2d(p->ctx, dst + (uint64_t)off, pat, (size_t)n)) {
                kf_free(p->ctx, pat);
                return -1;
            }
        }
    }
    kf_free(p->ctx, pat);
    return 0;
}

/* Tuning: large templates are timed in every configuration once; the
 * winner is kept in the cache as kf_tune_<key>.txt. */
typedef struct tune_ud {
    kf_cuda_plan *p;
    bool enabled;
} tune_ud;

static int pick_cached(void *ud, const char *key)
{
    tune_ud *t = ud;
    char path[1100];
    snprintf(path, sizeof path, "%s/kf_tune_%s.txt", t->p->cache, key);
    FILE *f = fopen(path, "r");
    if (f) {
        int v = -1;
        if (fscanf(f, "%d", &v) != 1) v = -1;
        fclose(f);
        if (v >= 0 && v < kf_mm_ncfgs) return v;
    }
    return t->enabled ? -1 : kf_mm_ncfgs; /* >= ncfgs: the heuristic */
}

static int tune(kf_cuda_plan *p, kf_buf *note)
{
    kf_cuda_prog *g = &p->prog;
    for (int i = 0; i < g->nlaunch; i++) {
        if (!g->launch[i].tuned || !p->fn[i]) continue;
        if (fill_inputs(p)) return -1;
        int kid = g->launch[i].kernel, best = -1, n = 0;
        while (i + n < g->nlaunch && g->launch[i + n].kernel == kid) n++;
        /* the candidates, timed in rounds (time_medians) */
        one_launch *ol = kf_malloc(p->ctx, sizeof *ol * (size_t)n);
        void **args = kf_malloc(p->ctx, sizeof *args * (size_t)(3 * n));
        void **uds = kf_malloc(p->ctx, sizeof *uds * (size_t)n);
        double *ms = kf_malloc(p->ctx, sizeof *ms * (size_t)n);
        int bad = !ol || !args || !uds || !ms;
        for (int j = 0; j < n && !bad; j++) {
            kf_cuda_call *l = &g->launch[i + j];
            bad = call_args(p, i + j, p->table, args + 3 * j);
            ol[j] = (one_launch){p->ctx, p->fn[i + j], l->grid, l->block, l->smem, args + 3 * j};
            uds[j] = &ol[j];
        }
        bad = bad || time_medians(p->ctx, n, launch_one, uds, 10, ms);
        kf_buf_printf(note, "/* kfuse-tuned: kernel %d:", kid);
        for (int j = 0; j < n && !bad; j++) {
            char cn[64];
            kf_mm_cfg_name(g->launch[i + j].variant, cn, sizeof cn);
            kf_buf_printf(note, " [%s] %.4f ms;", cn, ms[j]);
            if (best < 0 || ms[j] < ms[best - i]) best = i + j;
        }
        kf_free(p->ctx, ol);
        kf_free(p->ctx, args);
        kf_free(p->ctx, uds);
        kf_free(p->ctx, ms);
        if (bad) return -1;
        char cn[64];
        kf_mm_cfg_name(g->launch[best].variant, cn, sizeof cn);
        kf_buf_printf(note, " chose %s */\n", cn);
        char path[1100], v[16];
        snprintf(path, sizeof path, "%s/kf_tune_%s.txt", p->cache, g->launch[best].key);
        snprintf(v, sizeof v, "%d\n", g->launch[best].variant);
        kf_jit_write_file(path, v, strlen(v)); /* a cache: failing to write it is harmless */
        for (int j = i; j < g->nlaunch && g->launch[j].kernel == kid; j++) {
            if (j != best) p->fn[j] = NULL;
            g->launch[j].tuned = 0;
        }
    }
    return 0;
}

int kf_cuda_plan_new(struct kf_sched *s, const kf_options *o, char *refused_epi, char *refused_pro,
                     kf_cuda_plan **out)
{
    kf_ctx *ctx = s->ctx;
    *out = NULL;
    kf_cuda_plan *p = kf_malloc(ctx, sizeof *p);
    if (!p) return -1;
    memset(p, 0, sizeof *p);
    p->ctx = ctx;
    p->compile_only = o->compile_only;
    kf_cuda_dev dev = {.major = 9, .minor = 0, .nsm = 132, .smem_optin = 227 * 1024};
    if (kf_jit_cache_dir(ctx, o->cache_dir, p->cache, sizeof p->cache)) goto fail;
    if (!o->compile_only && kf_cuda_init(ctx, &dev)) goto fail;
    const char *te = getenv("KFUSE_CUDA_TUNE");
    tune_ud tu = {p, !o->compile_only && !(te && !strcmp(te, "0"))};
    p->measures = tu.enabled;
    kf_cuda_target t = {.sm_major = dev.major, .sm_minor = dev.minor, .nsm = dev.nsm, .smem_optin = dev.smem_optin,
                        .pick = pick_cached, .ud = &tu};
    int gen = kf_cg_cuda_generate(s, &t, refused_epi, refused_pro, &p->prog);
    if (gen) {
        kf_cuda_plan_free(p);
        return gen;
    }
    if (o->dump) fprintf(o->dump, "# generated CUDA source: %zu bytes\n", strlen(p->prog.prog.source));
    if (kf_cuda_compile(ctx, p->prog.prog.source, o->cache_dir, dev.major, dev.minor, o->compile_only, &p->mod))
        goto fail;
    if (o->compile_only) {
        *out = p;
        return 0;
    }

    kf_cuda_prog *g = &p->prog;
    int ns = g->prog.nslots;
    p->fn = kf_malloc(ctx, sizeof *p->fn * (size_t)(g->nlaunch + 1));
    p->own = kf_malloc(ctx, sizeof *p->own * (size_t)(ns + 1));
    p->table = kf_malloc(ctx, sizeof *p->table * (size_t)(ns + 1));
    p->mapmem = kf_malloc(ctx, sizeof *p->maps * (size_t)(2 * g->nlaunch + 2));
    p->maps = (CUtensorMap *)(((uintptr_t)p->mapmem + 127) & ~(uintptr_t)127);
    p->mapped = kf_malloc(ctx, sizeof *p->mapped * (size_t)(2 * g->nlaunch + 1));
    if (!p->fn || !p->own || !p->table || !p->mapmem || !p->mapped) goto fail;
    memset(p->maps, 0, sizeof *p->maps * (size_t)(2 * g->nlaunch + 1));
    memset(p->mapped, 0, sizeof *p->mapped * (size_t)(2 * g->nlaunch + 1));
    memset(p->own, 0, sizeof *p->own * (size_t)(ns + 1));
    memset(p->table, 0, sizeof *p->table * (size_t)(ns + 1));
    for (int i = 0; i < g->nlaunch; i++)
        if (!(p->fn[i] = kf_cuda_function(ctx, &p->mod, g->launch[i].name, g->launch[i].smem))) goto fail;
    if (g->prog.scratch_bytes && kf_cuda_alloc(ctx, (size_t)g->prog.scratch_bytes, &p->scratch)) goto fail;
    for (int i = 0; i < ns; i++) {
        kf_slot *sl = &g->prog.slots[i];
        if (sl->kind == KF_SLOT_SCRATCH) {
            p->table[i] = p->scratch + (uint64_t)sl->offset;
            continue;
        }
        if (kf_cuda_alloc(ctx, (size_t)slot_bytes(sl), &p->own[i])) goto fail;
        p->table[i] = p->own[i];
        if (sl->kind == KF_SLOT_CONST && kf_cuda_h2d(ctx, p->own[i], sl->node->data, (size_t)slot_bytes(sl)))
            goto fail;
    }
    kf_buf note;
    kf_buf_init(&note, ctx);
    int rc = tune(p, &note);
    if (rc == 0 && note.s) {
        /* the tuning result, for bench and emit */
        size_t a = strlen(g->prog.source), b = strlen(note.s);
        char *ns2 = kf_realloc(ctx, g->prog.source, a + b + 1);
        if (ns2) {
            memcpy(ns2 + a, note.s, b + 1);
            g->prog.source = ns2;
        }
    }
    kf_buf_free(&note);
    if (rc) goto fail;
    *out = p;
    return 0;
fail:
    kf_cuda_plan_free(p);
    return -1;
}

void kf_cuda_plan_free(kf_cuda_plan *p)
{
    if (!p) return;
    if (p->own)
        for (int i = 0; i < p->prog.prog.nslots; i++) kf_cuda_free(p->own[i]);
    kf_cuda_free(p->scratch);
    kf_cuda_unload(&p->mod);
    kf_free(p->ctx, p->fn);
    kf_free(p->ctx, p->own);
    kf_free(p->ctx, p->table);
    kf_free(p->ctx, p->mapmem);
    kf_free(p->ctx, p->mapped);
    kf_cuda_prog_free(p->ctx, &p->prog);
    kf_free(p->ctx, p);
}

const char *kf_cuda_plan_source(const kf_cuda_plan *p) { return p ? p->prog.prog.source : ""; }

static kf_status launch_all(kf_cuda_plan *p, uint64_t *table)
{
    kf_cuda_prog *g = &p->prog;
    for (int i = 0; i < g->nlaunch; i++) {
        kf_cuda_call *l = &g->launch[i];
        void *args[3];
        if (!p->fn[i]) continue;
        if (call_args(p, i, table, args) || kf_cuda_launch(p->ctx, p->fn[i], l->grid, l->block, l->smem, args))
            return KF_ERR_RUNTIME;
    }
    return KF_OK;
}

static kf_status not_loaded(kf_cuda_plan *p)
{
    kf_err(p->ctx, KF_ERR_UNSUPPORTED, "error: this graph was compiled with compile_only: it cannot run");
    return KF_ERR_UNSUPPORTED;
}

kf_status kf_cuda_plan_run(kf_cuda_plan *p, const void *const *in, void *const *out)
{
    if (p->compile_only) return not_loaded(p);
    if (kf_cuda_init(p->ctx, NULL)) return kf_errcode(p->ctx);
    kf_cuda_prog *g = &p->prog;
    for (int i = 0; i < g->prog.nslots; i++) {
        kf_slot *sl = &g->prog.slots[i];
        void *const *arr = sl->kind == KF_SLOT_INPUT ? (void *const *)in : sl->kind == KF_SLOT_OUTPUT ? out : NULL;
        if ((sl->kind == KF_SLOT_INPUT || sl->kind == KF_SLOT_OUTPUT) && (!arr || !arr[sl->index]) && slot_bytes(sl) > 0) {
            kf_err(p->ctx, KF_ERR_INVALID, "error: kf_run: the buffer of %s %d is NULL",
                   sl->kind == KF_SLOT_INPUT ? "input" : "output", sl->index);
            return KF_ERR_INVALID;
        }
    }
    for (int i = 0; i < g->prog.nslots; i++) {
        kf_slot *sl = &g->prog.slots[i];
        if (sl->kind == KF_SLOT_INPUT && kf_cuda_h2d(p->ctx, p->own[i], in[sl->index], (size_t)slot_bytes(sl)))
            return KF_ERR_RUNTIME;
    }
    kf_status st = launch_all(p, p->table);
    if (st) return st;
    if (kf_cuda_sync(p->ctx)) return KF_ERR_RUNTIME;
    for (int i = 0; i < g->prog.nslots; i++) {
        kf_slot *sl = &g->prog.slots[i];
        if (sl->kind == KF_SLOT_OUTPUT && kf_cuda_d2h(p->ctx, out[sl->index], p->own[i], (size_t)slot_bytes(sl)))
            return KF_ERR_RUNTIME;
    }
    return KF_OK;
}

kf_status kf_cuda_plan_run_device(kf_cuda_plan *p, void *const *din, void *const *dout)
{
    if (p->compile_only) return not_loaded(p);
    if (kf_cuda_init(p->ctx, NULL)) return kf_errcode(p->ctx);
    if (!din && !dout) return launch_all(p, p->table);
    kf_cuda_prog *g = &p->prog;
    int ns = g->prog.nslots;
    uint64_t stack[64], *t = ns <= 64 ? stack : kf_malloc(p->ctx, sizeof *t * (size_t)ns);
    if (!t) return KF_ERR_NOMEM;
    kf_status st = KF_OK;
    for (int i = 0; i < ns && !st; i++) {
        kf_slot *sl = &g->prog.slots[i];
        t[i] = p->table[i];
        void *const *arr = sl->kind == KF_SLOT_INPUT ? din : sl->kind == KF_SLOT_OUTPUT ? dout : NULL;
        if (!arr) continue;
        t[i] = (uint64_t)(uintptr_t)arr[sl->index];
        if ((!t[i] && slot_bytes(sl)) || (t[i] & 15)) {
            kf_err(p->ctx, KF_ERR_INVALID, "error: kf_run_device: the device buffer of %s %d is %s",
                   sl->kind == KF_SLOT_INPUT ? "input" : "output", sl->index, t[i] ? "not 16-byte aligned" : "NULL");
            st = KF_ERR_INVALID;
        }
    }
    if (!st) st = launch_all(p, t);
    if (t != stack) kf_free(p->ctx, t);
    return st;
}

static int launch_plan(void *ud)
{
    kf_cuda_plan *p = ud;
    return launch_all(p, p->table) != KF_OK;
}

int kf_cuda_plans_time(kf_cuda_plan *const *p, int n, int reps, double *ms)
{
    for (int j = 0; j < n; j++) {
        if (p[j]->compile_only) return not_loaded(p[j]), -1;
        if (fill_inputs(p[j])) return -1;
    }
    return n > 0 ? time_medians(p[0]->ctx, n, launch_plan, (void *const *)p, reps, ms) : 0;
}

const char *kf_cuda_plan_key(const kf_cuda_plan *p, int kernel)
{
    for (int i = 0; p && i < p->prog.nlaunch; i++)
        if (p->prog.launch[i].kernel == kernel && p->prog.launch[i].key[0] && p->fn && p->fn[i])
            return p->prog.launch[i].key;
    return NULL;
}

bool kf_cuda_plan_measures(const kf_cuda_plan *p) { return p && p->measures; }

int kf_cuda_plan_cached(const kf_cuda_plan *p, const char *name)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/kf_%s.txt", p->cache, name);
    FILE *f = fopen(path, "r");
    int v = -1;
    if (f) {
        if (fscanf(f, "%d", &v) != 1) v = -1;
        fclose(f);
    }
    return v;
}

void kf_cuda_plan_cache(const kf_cuda_plan *p, const char *name, int v)
{
    char path[1100], b[16];
    snprintf(path, sizeof path, "%s/kf_%s.txt", p->cache, name);
    snprintf(b, sizeof b, "%d\n", v);
    kf_jit_write_file(path, b, strlen(b)); /* a cache: failing to write it is harmless */
}

kf_status kf_cuda_plan_wait(kf_cuda_plan *p)
{
    if (p->compile_only) return not_loaded(p);
    if (kf_cuda_init(p->ctx, NULL)) return kf_errcode(p->ctx);
    return kf_cuda_sync(p->ctx) ? KF_ERR_RUNTIME : KF_OK;
}
