// CPU emulation of the CUDA subset the rules' kernels use (tests only; see cuda_emu.py).
// Every CUDA thread of a block is a fiber (ucontext) on one host thread, switched only at
// barriers; blocks run one after another. __syncthreads is a barrier over the block, warp
// shuffles exchange through a per-warp buffer between two warp barriers, __shared__ is a
// static (one block at a time). A barrier some threads never reach is reported as a deadlock;
// a misaligned vector access aborts.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#define RULES_EMULATE 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __shared__ static
#define __cluster_dims__(...)
#define __align__(n) alignas(n)

struct emu_dim3 { unsigned x = 1, y = 1, z = 1; };
extern emu_dim3 threadIdx, blockIdx;
extern emu_dim3 blockDim, gridDim;

struct float2 { float x, y; } __attribute__((aligned(8)));
struct float4 { float x, y, z, w; } __attribute__((aligned(16)));
struct uint2 { unsigned int x, y; } __attribute__((aligned(8)));
struct uint4 { unsigned int x, y, z, w; } __attribute__((aligned(16)));
inline float2 make_float2(float a, float b) { return {a, b}; }
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
inline uint2 make_uint2(unsigned a, unsigned b) { return {a, b}; }
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }

inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline unsigned int __float_as_uint(float f) { unsigned int i; std::memcpy(&i, &f, 4); return i; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }

inline float rules_host_f16_to_f32(unsigned short h) { _Float16 v; std::memcpy(&v, &h, 2); return (float)v; }
inline unsigned short rules_host_f32_to_f16(float f) { _Float16 v = (_Float16)f; unsigned short h; std::memcpy(&h, &v, 2); return h; }

inline void rules_emu_check_align(const void* p, int bytes) {
    if (bytes > 1 && (reinterpret_cast<std::uintptr_t>(p) % bytes) != 0) {
        std::fprintf(stderr, "emulator: misaligned vector access (%d bytes at %p)\n", bytes, p);
        std::abort();
    }
}

void emu_syncthreads();
void emu_syncwarp();  // a barrier over the calling thread's warp
void emu_warp_exchange(const void* mine, void* out, int size, int src_lane);
// Thread-block clusters: the blocks of a cluster run together (fibers of one scheduler), each
// with its own dynamic shared memory (poisoned with 0xFF bytes: NaN), which the others reach
// through rules_emu_map_rank; the cluster barrier is split into arrive and wait.
void* rules_emu_dyn_smem();
const void* rules_emu_map_rank(const void* p, unsigned rank);
void rules_emu_cluster_arrive();
void rules_emu_cluster_wait();

inline void __syncthreads() { emu_syncthreads(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu_syncwarp(); }

template <class T> inline T emu_shfl(T v, int src) {
    T r;
    emu_warp_exchange(&v, &r, sizeof(T), src);
    return r;
}
template <class T> inline T __shfl_xor_sync(unsigned, T v, int o) { return emu_shfl(v, (int)(threadIdx.x & 31) ^ o); }
template <class T> inline T __shfl_sync(unsigned, T v, int src) { return emu_shfl(v, src & 31); }
template <class T> inline T __shfl_up_sync(unsigned, T v, int d) {
    const int lane = threadIdx.x & 31;
    T r = emu_shfl(v, lane >= d ? lane - d : lane);
    return r;
}
