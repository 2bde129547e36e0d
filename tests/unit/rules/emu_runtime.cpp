// The emulator's scheduler: one fiber per CUDA thread, run round-robin until each reaches a
// barrier or the end of the kernel (see emu_shim.h).
#include <ucontext.h>

#include "emu_shim.h"

emu_dim3 threadIdx, blockIdx;
emu_dim3 blockDim, gridDim;

namespace {
enum State { RUNNABLE, WAITING, DONE };
struct Fiber {
    ucontext_t ctx;
    std::vector<char> stack;
    State state = RUNNABLE;
    int wait_warp = -1;  // -1: the block barrier
    unsigned wait_gen = 0;
};
ucontext_t g_sched;
std::vector<Fiber> g_fibers;
unsigned g_cur = 0;
unsigned g_block_count = 0, g_block_gen = 0;
std::vector<unsigned> g_warp_count, g_warp_gen;
std::vector<std::vector<unsigned char>> g_warp_buf;  // [warp][lane * 16]
std::function<void()>* g_fn = nullptr;

void fiber_main() {
    (*g_fn)();
    g_fibers[g_cur].state = DONE;
    swapcontext(&g_fibers[g_cur].ctx, &g_sched);
}

void wait_here(int warp, unsigned gen) {
    Fiber& f = g_fibers[g_cur];
    f.state = WAITING;
    f.wait_warp = warp;
    f.wait_gen = gen;
    swapcontext(&f.ctx, &g_sched);
}

void warp_barrier() {
    const unsigned w = g_cur / 32;
    const unsigned gen = g_warp_gen[w];
    if (++g_warp_count[w] == 32) {
        g_warp_count[w] = 0;
        ++g_warp_gen[w];
        return;
    }
    wait_here((int)w, gen);
}

const char* run_block() {
    const unsigned n = blockDim.x;
    g_block_count = 0;
    for (unsigned w = 0; w < n / 32; ++w) g_warp_count[w] = 0;
    for (unsigned i = 0; i < n; ++i) {
        Fiber& f = g_fibers[i];
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack.data();
        f.ctx.uc_stack.ss_size = f.stack.size();
        f.ctx.uc_link = nullptr;
        makecontext(&f.ctx, fiber_main, 0);
        f.state = RUNNABLE;
    }
    for (;;) {
        bool progress = false, all_done = true;
        for (unsigned i = 0; i < n; ++i) {
            Fiber& f = g_fibers[i];
            if (f.state == DONE) continue;
            all_done = false;
            if (f.state == WAITING) {
                const unsigned gen = f.wait_warp < 0 ? g_block_gen : g_warp_gen[f.wait_warp];
                if (gen == f.wait_gen) continue;
                f.state = RUNNABLE;
            }
            g_cur = i;
            threadIdx.x = i;
            swapcontext(&g_sched, &f.ctx);
            progress = true;
        }
        if (all_done) return nullptr;
        if (!progress) return "deadlock: a __syncthreads or warp shuffle is not reached by every thread";
    }
}
}  // namespace

void emu_syncthreads() {
    const unsigned gen = g_block_gen;
    if (++g_block_count == blockDim.x) {
        g_block_count = 0;
        ++g_block_gen;
        return;
    }
    wait_here(-1, gen);
}

void emu_warp_exchange(const void* mine, void* out, int size, int src_lane) {
    auto& buf = g_warp_buf[g_cur / 32];
    std::memcpy(&buf[(g_cur & 31) * 16], mine, size);
    warp_barrier();
    std::memcpy(out, &buf[src_lane * 16], size);
    warp_barrier();
}

extern "C" const char* emu_run(unsigned gx, unsigned gy, unsigned bx, std::function<void()>* fn) {
    if (bx == 0 || bx % 32 != 0 || bx > 1024) return "block size must be a positive multiple of 32, at most 1024";
    gridDim.x = gx; gridDim.y = gy; gridDim.z = 1;
    blockDim.x = bx; blockDim.y = 1; blockDim.z = 1;
    g_fn = fn;
    g_fibers = std::vector<Fiber>(bx);
    for (auto& f : g_fibers) f.stack.resize(1 << 16);
    g_warp_count.assign(bx / 32, 0);
    g_warp_gen.assign(bx / 32, 0);
    g_warp_buf.assign(bx / 32, std::vector<unsigned char>(32 * 16));
    for (unsigned by = 0; by < gy; ++by) {
        for (unsigned b = 0; b < gx; ++b) {
            blockIdx.x = b; blockIdx.y = by;
            const char* err = run_block();
            if (err) return err;
        }
    }
    return nullptr;
}
