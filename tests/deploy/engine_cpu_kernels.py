"""Stand-in "kernels" for CPU tests of the slot plumbing: ModelNew modules with the tasks'
constructors and forwards, computing in PyTorch (so they run without a GPU). Only the
binding is under test here, never a kernel: the verifier is faked wherever these are used."""

SOURCES = {
    "rmsnorm": '''
import torch
import torch.nn as nn

class ModelNew(nn.Module):
    def __init__(self, dim, eps=1e-6, BLOCK=256):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.calls = 0

    def forward(self, x):
        assert x.dim() == 2 and x.is_contiguous()
        self.calls += 1
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)
''',
    "rmsnorm_no_weight": '''
import torch
import torch.nn as nn

class ModelNew(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        h = x.float()
        return (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)
''',
    "residual_rmsnorm": '''
import torch
import torch.nn as nn

class ModelNew(nn.Module):
    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden_size))

    def forward(self, x, residual):
        assert x.dim() == 2 and x.is_contiguous() and residual.is_contiguous()
        r = residual + x
        h = r.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(r.dtype), r
''',
    "rope": '''
import torch
import torch.nn as nn

class ModelNew(nn.Module):
    def forward(self, q, k, cos, sin):
        assert q.dim() == 3 and k.dim() == 3 and cos.dim() == 2 and q.is_contiguous() and k.is_contiguous()
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        h = q.shape[-1] // 2
        rq = torch.cat((-q[..., h:], q[..., :h]), -1)
        rk = torch.cat((-k[..., h:], k[..., :h]), -1)
        return q * cos + rq * sin, k * cos + rk * sin
''',
    "silu_mul": '''
import torch
import torch.nn as nn
import torch.nn.functional as F

class ModelNew(nn.Module):
    def __init__(self, BLOCK=256):
        super().__init__()

    def forward(self, gate, up):
        assert gate.dim() == 2 and gate.is_contiguous() and up.is_contiguous()
        return F.silu(gate) * up
''',
    "attention_decode": '''
import math
import torch
import torch.nn as nn

class ModelNew(nn.Module):
    def forward(self, q, k_cache, v_cache, cache_len):
        b, h, d = q.shape
        kv, length = k_cache.shape[1], k_cache.shape[2]
        assert k_cache.is_contiguous() and cache_len.dtype == torch.int64 and cache_len.shape == (b,)
        s = torch.matmul(q.float().view(b, kv, h // kv, d), k_cache.float().transpose(-1, -2)) / math.sqrt(d)
        s = s.masked_fill(~(torch.arange(length)[None, :] < cache_len[:, None])[:, None, None, :], float("-inf"))
        return torch.matmul(torch.softmax(s, -1), v_cache.float()).reshape(b, h, d).to(q.dtype)
''',
    "attention_decode_ignores_length": '''
import math
import torch
import torch.nn as nn

class ModelNew(nn.Module):
    def forward(self, q, k_cache, v_cache, cache_len):
        b, h, d = q.shape
        kv = k_cache.shape[1]
        s = torch.matmul(q.float().view(b, kv, h // kv, d), k_cache.float().transpose(-1, -2)) / math.sqrt(d)
        return torch.matmul(torch.softmax(s, -1), v_cache.float()).reshape(b, h, d).to(q.dtype)
''',
}
