"""The decode step's own two small kernels: what goes into a step and what comes out of it.

In the graph, a fused step began with PyTorch's embedding gather, the multiplier, ``pos + 1``
and its expansion to the batch, and a greedy step ended with a token copy and ``pos += 1``:
five kernels of a few bytes each, none of which could overlap its neighbours (PDL needs the
kernel to wait for its inputs itself). The graph step's profile (H200, Llama-3.2-1B) charged
them about 20 µs of a 0.86 ms step. Here they are two kernels, both launched as programmatic
dependents where the step is (``autotuner.runtime.pdl``):

    decode_step_in    x[b] = embedding[token[b]] (* multiplier), cache_len[b] = pos + 1
    decode_step_out   history[b, index] = chosen[b], pos += 1

``decode_step_in`` lets the step's first projection start (and fetch its weights) at once and
then waits for its own inputs; ``decode_step_out`` waits for the head kernel's token. A token
outside the vocabulary stops the kernel (``__trap``), as PyTorch's embedding asserts on the
device. Off a CUDA device, or for a dtype the kernel does not scale, the same values come from
PyTorch (``embed_and_lengths``/``feed_back`` pick).
"""

from __future__ import annotations

from typing import Any

import torch

STEP_IO_SOURCE = r"""
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ float scaled(float v, float m) { return v * m; }

// grid (blocks over the row, batch); kind 0: a plain copy (16-byte pieces where aligned),
// 1 bf16, 2 fp16, 3 fp32 scaled by mult with one rounding (PyTorch's x * scalar)
extern "C" __global__ void decode_step_in(const long long* token, long long token_stride, const long long* pos,
                                          const void* emb, long long vocab, long long hidden, int elem_bytes,
                                          int kind, float mult, void* x, long long* cache_len) {
    pdl_launch_dependents();  // the first projection may start: it waits for x itself
    pdl_wait();               // token and position: the step before wrote them
    const int b = blockIdx.y;
    const long long t = token[b * token_stride];
    if (t < 0 || t >= vocab) __trap();  // as PyTorch's embedding: an index out of range
    if (blockIdx.x == 0 && threadIdx.x == 0) cache_len[b] = pos[0] + 1;
    const long long row_bytes = hidden * elem_bytes;
    const char* src = static_cast<const char*>(emb) + t * row_bytes;
    char* dst = static_cast<char*>(x) + (long long)b * row_bytes;
    const long long first = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long stride = (long long)gridDim.x * blockDim.x;
    if (kind == 0) {
        if (row_bytes % 16 == 0 && ((unsigned long long)src % 16) == 0 && ((unsigned long long)dst % 16) == 0) {
            for (long long i = first; i < row_bytes / 16; i += stride)
                reinterpret_cast<uint4*>(dst)[i] = reinterpret_cast<const uint4*>(src)[i];
        } else {
            for (long long i = first; i < row_bytes; i += stride) dst[i] = src[i];
        }
        return;
    }
    for (long long i = first; i < hidden; i += stride) {
        if (kind == 1) {
            const unsigned short h = reinterpret_cast<const unsigned short*>(src)[i];
            const float v = scaled(__uint_as_float(((unsigned int)h) << 16), mult);
            unsigned short r;
            asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r) : "f"(v));
            reinterpret_cast<unsigned short*>(dst)[i] = r;
        } else if (kind == 2) {
            const unsigned short h = reinterpret_cast<const unsigned short*>(src)[i];
            float v;
            asm("cvt.f32.f16 %0, %1;" : "=f"(v) : "h"(h));
            v = scaled(v, mult);
            unsigned short r;
            asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r) : "f"(v));
            reinterpret_cast<unsigned short*>(dst)[i] = r;
        } else {
            reinterpret_cast<float*>(dst)[i] = scaled(reinterpret_cast<const float*>(src)[i], mult);
        }
    }
}

// one block: the greedy token of each sequence into its history column, the position advanced
extern "C" __global__ void decode_step_out(const long long* chosen, long long* history, long long history_stride,
                                           int index, int batch, long long* pos) {
    pdl_wait();  // the head kernel's token
    pdl_launch_dependents();
    for (int b = threadIdx.x; b < batch; b += blockDim.x) history[b * history_stride + index] = chosen[b];
    if (threadIdx.x == 0) pos[0] += 1;
}
"""

_KINDS = {torch.bfloat16: 1, torch.float16: 2, torch.float32: 3}
_THREADS = 128
_modules: dict[int, Any] = {}


def _module(device: torch.device) -> Any:
    from autotuner.runtime.compile import compile_module

    index = device.index if device.index is not None else torch.cuda.current_device()
    module = _modules.get(index)
    if module is None:
        with torch.cuda.device(index):
            module = _modules[index] = compile_module(STEP_IO_SOURCE)
    return module


def _kernel_path(weight: torch.Tensor, multiplier: float) -> int | None:
    """The kernel's ``kind`` for this embedding, or None where PyTorch computes it."""
    if weight.device.type != "cuda" or not weight.is_contiguous() or weight.dim() != 2:
        return None
    if multiplier == 1.0:
        return 0
    return _KINDS.get(weight.dtype)


def embed_and_lengths(tokens: torch.Tensor, position: torch.Tensor, weight: torch.Tensor,
                      multiplier: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """tokens [b, 1] int64 (any strides), position [1] int64 -> (x [b, hidden] = embedding rows
    times ``multiplier`` in the weight's dtype, cache_len [b] int64 = position + 1)."""
    b = tokens.shape[0]
    kind = _kernel_path(weight, multiplier)
    if kind is None or tokens.dtype != torch.long or position.dtype != torch.long:
        x = torch.nn.functional.embedding(tokens[:, 0], weight)
        if multiplier != 1.0:
            x = x * multiplier
        return x, (position + 1).expand(b).contiguous()
    from autotuner.runtime.pdl import pdl_launch

    vocab, hidden = weight.shape
    x = torch.empty(b, hidden, dtype=weight.dtype, device=weight.device)
    cache_len = torch.empty(b, dtype=torch.long, device=weight.device)
    pieces = hidden * weight.element_size() // 16 if kind == 0 else hidden
    blocks = max(1, min(8, -(-pieces // _THREADS)))
    pdl_launch(_module(weight.device), "decode_step_in", (blocks, b), _THREADS,
               (tokens, tokens.stride(0), position, weight, vocab, hidden, weight.element_size(), kind,
                float(multiplier), x, cache_len))
    return x, cache_len


def feed_back(chosen: torch.Tensor, history: torch.Tensor, index: int, position: torch.Tensor) -> None:
    """history[:, index] = chosen (the greedy token of each sequence, [b] or [b, 1] int64) and
    position += 1, on the device."""
    b = history.shape[0]
    if history.device.type != "cuda" or chosen.dtype != torch.long or not chosen.is_contiguous():
        history[:, index].copy_(chosen.reshape(b))
        position.add_(1)
        return
    from autotuner.runtime.pdl import pdl_launch

    threads = min(1024, max(32, -(-b // 32) * 32))
    pdl_launch(_module(history.device), "decode_step_out", 1, threads,
               (chosen, history, history.stride(0), index, b, position))
