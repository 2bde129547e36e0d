// The emulator's thread machinery (compiled into every emulated module; see emu_shim.h).
#include "emu_shim.h"

thread_local emu_dim3 threadIdx, blockIdx;
emu_dim3 blockDim, gridDim;

namespace {
struct Warp {
    std::unique_ptr<std::barrier<>> bar;
    alignas(16) unsigned char buf[32][16];
};
std::unique_ptr<std::barrier<>> g_block;
std::vector<Warp> g_warps;
const char* g_error = nullptr;

struct Job {
    std::function<void()> fn;
    unsigned tid;
};

void* worker(void* arg) {
    Job* job = static_cast<Job*>(arg);
    threadIdx.x = job->tid;
    for (unsigned by = 0; by < gridDim.y; ++by) {
        for (unsigned bx = 0; bx < gridDim.x; ++bx) {
            blockIdx.x = bx; blockIdx.y = by;
            if (!g_error) job->fn();
            g_block->arrive_and_wait();
        }
    }
    return nullptr;
}
}  // namespace

void emu_fail(const char* what) {
    if (!g_error) g_error = what;
    std::fprintf(stderr, "emulator: %s\n", what);
}

void emu_syncthreads() { g_block->arrive_and_wait(); }

void emu_warp_exchange(const void* mine, void* out, int size, int src_lane) {
    Warp& w = g_warps[threadIdx.x / 32];
    std::memcpy(w.buf[threadIdx.x & 31], mine, size);
    w.bar->arrive_and_wait();
    std::memcpy(out, w.buf[src_lane], size);
    w.bar->arrive_and_wait();
}

extern "C" const char* emu_run(unsigned gx, unsigned gy, unsigned bx, std::function<void()>* fn) {
    if (bx == 0 || bx % 32 != 0 || bx > 1024) return "block size must be a positive multiple of 32, at most 1024";
    g_error = nullptr;
    gridDim.x = gx; gridDim.y = gy; gridDim.z = 1;
    blockDim.x = bx; blockDim.y = 1; blockDim.z = 1;
    g_block = std::make_unique<std::barrier<>>(bx);
    g_warps = std::vector<Warp>(bx / 32);
    for (auto& w : g_warps) w.bar = std::make_unique<std::barrier<>>(32);
    std::vector<pthread_t> threads(bx);
    std::vector<Job> jobs(bx);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 18);
    for (unsigned t = 0; t < bx; ++t) {
        jobs[t] = Job{*fn, t};
        if (pthread_create(&threads[t], &attr, worker, &jobs[t]) != 0) return "pthread_create failed";
    }
    for (unsigned t = 0; t < bx; ++t) pthread_join(threads[t], nullptr);
    pthread_attr_destroy(&attr);
    return g_error;
}
