// The emulator's scheduler: one fiber per CUDA thread, run round-robin until each reaches a
// barrier or the end of the kernel (see emu_shim.h). On x86-64 a fiber switch saves only the
// callee-saved registers and the stack pointer (glibc's swapcontext also makes a signal-mask
// system call, which made barrier-heavy kernels crawl); elsewhere ucontext does the switching.
#include <ucontext.h>

#include "emu_shim.h"

#if defined(__x86_64__)
extern "C" void emu_switch(void** save_sp, void* load_sp);
asm(R"(
    .text
    .globl emu_switch
    .type emu_switch, @function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch, .-emu_switch
)");
#define EMU_FAST_SWITCH 1
#endif

emu_dim3 threadIdx, blockIdx;
emu_dim3 blockDim, gridDim;

namespace {
enum State { RUNNABLE, WAITING, DONE };
enum Wait { W_BLOCK, W_WARP, W_CLUSTER };
struct Fiber {
    ucontext_t ctx;
    void* sp = nullptr;
    std::vector<char> stack;
    State state = RUNNABLE;
    Wait wait_kind = W_BLOCK;
    int wait_idx = 0;  // the block (W_BLOCK) or warp (W_WARP) waited on
    unsigned wait_gen = 0;
    unsigned cl_gen = 0;  // the cluster barrier phase this thread arrived at
};
ucontext_t g_sched;
void* g_sched_sp = nullptr;
std::vector<Fiber> g_fibers;
unsigned g_cur = 0;
unsigned g_bx = 1, g_cluster = 1, g_cluster_base = 0;
std::vector<unsigned> g_block_count, g_block_gen;  // per block of the running cluster
unsigned g_cl_count = 0, g_cl_gen = 0;
std::vector<std::vector<unsigned char>> g_smem;  // dynamic shared memory, per block
std::vector<unsigned> g_warp_count, g_warp_gen;
std::vector<std::vector<unsigned char>> g_warp_buf;  // [warp][lane * 16]
std::function<void()>* g_fn = nullptr;

void to_scheduler() {
    Fiber& f = g_fibers[g_cur];
#if EMU_FAST_SWITCH
    emu_switch(&f.sp, g_sched_sp);
#else
    swapcontext(&f.ctx, &g_sched);
#endif
}

void to_fiber(Fiber& f) {
#if EMU_FAST_SWITCH
    emu_switch(&g_sched_sp, f.sp);
#else
    swapcontext(&g_sched, &f.ctx);
#endif
}

void fiber_main() {
    (*g_fn)();
    g_fibers[g_cur].state = DONE;
    to_scheduler();
}

void start_fiber(Fiber& f) {
#if EMU_FAST_SWITCH
    // A stack that "returns" into fiber_main with the alignment of a fresh call, under six
    // zeroed callee-saved registers for emu_switch to pop.
    auto top = reinterpret_cast<std::uintptr_t>(f.stack.data() + f.stack.size()) & ~std::uintptr_t(15);
    void** sp = reinterpret_cast<void**>(top);
    *--sp = nullptr;
    *--sp = reinterpret_cast<void*>(&fiber_main);
    for (int i = 0; i < 6; ++i) *--sp = nullptr;
    f.sp = sp;
#else
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack.data();
    f.ctx.uc_stack.ss_size = f.stack.size();
    f.ctx.uc_link = nullptr;
    makecontext(&f.ctx, fiber_main, 0);
#endif
}

void wait_here(Wait kind, int idx, unsigned gen) {
    Fiber& f = g_fibers[g_cur];
    f.state = WAITING;
    f.wait_kind = kind;
    f.wait_idx = idx;
    f.wait_gen = gen;
    to_scheduler();
}

unsigned current_gen(const Fiber& f) {
    if (f.wait_kind == W_BLOCK) return g_block_gen[f.wait_idx];
    if (f.wait_kind == W_WARP) return g_warp_gen[f.wait_idx];
    return g_cl_gen;
}

void set_ids(unsigned i) {
    threadIdx.x = i % g_bx;
    blockIdx.x = g_cluster_base + i / g_bx;
}

void warp_barrier() {
    const unsigned w = g_cur / 32;
    const unsigned gen = g_warp_gen[w];
    if (++g_warp_count[w] == 32) {
        g_warp_count[w] = 0;
        ++g_warp_gen[w];
        return;
    }
    wait_here(W_WARP, (int)w, gen);
}

const char* run_cluster() {
    const unsigned n = g_bx * g_cluster;
    for (unsigned b = 0; b < g_cluster; ++b) {
        g_block_count[b] = 0;
        std::memset(g_smem[b].data(), 0xff, g_smem[b].size());
    }
    g_cl_count = 0;
    for (unsigned w = 0; w < n / 32; ++w) g_warp_count[w] = 0;
    for (unsigned i = 0; i < n; ++i) {
        start_fiber(g_fibers[i]);
        g_fibers[i].state = RUNNABLE;
    }
    for (;;) {
        bool progress = false, all_done = true;
        for (unsigned i = 0; i < n; ++i) {
            Fiber& f = g_fibers[i];
            if (f.state == DONE) continue;
            all_done = false;
            if (f.state == WAITING) {
                if (current_gen(f) == f.wait_gen) continue;
                f.state = RUNNABLE;
            }
            g_cur = i;
            set_ids(i);
            to_fiber(f);
            progress = true;
        }
        if (all_done) return nullptr;
        if (!progress) return "deadlock: a __syncthreads, cluster barrier or warp shuffle is not reached by every thread";
    }
}
}  // namespace

void emu_syncthreads() {
    const unsigned b = g_cur / g_bx;
    const unsigned gen = g_block_gen[b];
    if (++g_block_count[b] == g_bx) {
        g_block_count[b] = 0;
        ++g_block_gen[b];
        return;
    }
    wait_here(W_BLOCK, (int)b, gen);
}

void* rules_emu_dyn_smem() { return g_smem[g_cur / g_bx].data(); }

const void* rules_emu_map_rank(const void* p, unsigned rank) {
    const auto& mine = g_smem[g_cur / g_bx];
    const auto off = static_cast<const unsigned char*>(p) - mine.data();
    if (rank >= g_cluster || off < 0 || (size_t)off >= mine.size()) {
        std::fprintf(stderr, "emulator: map_rank(%p, %u) outside the block's shared memory or cluster\n", p, rank);
        std::abort();
    }
    return g_smem[rank].data() + off;
}

void rules_emu_cluster_arrive() {
    g_fibers[g_cur].cl_gen = g_cl_gen;
    if (++g_cl_count == g_bx * g_cluster) {
        g_cl_count = 0;
        ++g_cl_gen;
    }
}

void rules_emu_cluster_wait() {
    const unsigned gen = g_fibers[g_cur].cl_gen;
    if (g_cl_gen != gen) return;
    wait_here(W_CLUSTER, 0, gen);
}

void emu_syncwarp() { warp_barrier(); }

void emu_warp_exchange(const void* mine, void* out, int size, int src_lane) {
    auto& buf = g_warp_buf[g_cur / 32];
    std::memcpy(&buf[(g_cur & 31) * 16], mine, size);
    warp_barrier();
    std::memcpy(out, &buf[src_lane * 16], size);
    warp_barrier();
}

extern "C" const char* emu_run_cluster(unsigned gx, unsigned gy, unsigned bx, unsigned cluster, unsigned smem,
                                       std::function<void()>* fn) {
    if (bx == 0 || bx % 32 != 0 || bx > 1024) return "block size must be a positive multiple of 32, at most 1024";
    if (cluster == 0 || cluster > 16 || gx % cluster != 0) return "the grid must be a whole number of clusters";
    if (smem > 227 * 1024) return "more dynamic shared memory than a block may have (227 KB)";
    gridDim.x = gx; gridDim.y = gy; gridDim.z = 1;
    blockDim.x = bx; blockDim.y = 1; blockDim.z = 1;
    g_fn = fn;
    g_bx = bx;
    g_cluster = cluster;
    const unsigned n = bx * cluster;
    g_fibers = std::vector<Fiber>(n);
    for (auto& f : g_fibers) f.stack.resize(1 << 16);
    g_block_count.assign(cluster, 0);
    g_block_gen.assign(cluster, 0);
    g_smem.assign(cluster, std::vector<unsigned char>(smem + 16));
    g_warp_count.assign(n / 32, 0);
    g_warp_gen.assign(n / 32, 0);
    g_warp_buf.assign(n / 32, std::vector<unsigned char>(32 * 16));
    for (unsigned by = 0; by < gy; ++by) {
        for (unsigned b = 0; b < gx; b += cluster) {
            g_cluster_base = b;
            blockIdx.y = by;
            const char* err = run_cluster();
            if (err) return err;
        }
    }
    return nullptr;
}

extern "C" const char* emu_run(unsigned gx, unsigned gy, unsigned bx, std::function<void()>* fn) {
    return emu_run_cluster(gx, gy, bx, 1, 0, fn);
}
