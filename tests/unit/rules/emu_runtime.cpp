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
struct Fiber {
    ucontext_t ctx;
    void* sp = nullptr;
    std::vector<char> stack;
    State state = RUNNABLE;
    int wait_warp = -1;  // -1: the block barrier
    unsigned wait_gen = 0;
};
ucontext_t g_sched;
void* g_sched_sp = nullptr;
std::vector<Fiber> g_fibers;
unsigned g_cur = 0;
unsigned g_block_count = 0, g_block_gen = 0;
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

void wait_here(int warp, unsigned gen) {
    Fiber& f = g_fibers[g_cur];
    f.state = WAITING;
    f.wait_warp = warp;
    f.wait_gen = gen;
    to_scheduler();
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
                const unsigned gen = f.wait_warp < 0 ? g_block_gen : g_warp_gen[f.wait_warp];
                if (gen == f.wait_gen) continue;
                f.state = RUNNABLE;
            }
            g_cur = i;
            threadIdx.x = i;
            to_fiber(f);
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
