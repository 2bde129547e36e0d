"""Decode model tail: final RMSNorm, LM head and the greedy token (argmax), in bf16."""

# The last step of a decode token, as Hugging Face computes it: h = RMSNorm(x), logits = h W^T
# in bf16 (divided by the logits scaling where the model has one: Granite), and the greedy
# token (the first index of the largest logit). Default: Llama-3.2-1B's tied embedding as the
# head (2048 -> 128256, 525 MB).

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, hidden: int, vocab: int, eps: float, logits_scaling: float):
        super().__init__()
        self.eps, self.logits_scaling = eps, logits_scaling
        self.norm_weight = nn.Parameter(1.0 + 0.1 * torch.randn(hidden))
        self.weight = nn.Parameter(torch.randn(vocab, hidden) * hidden ** -0.5)

    def forward(self, x: torch.Tensor):
        # x: [batch, hidden] -> logits [batch, vocab], token [batch] int64
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        h = self.norm_weight * h.to(x.dtype)
        logits = F.linear(h, self.weight)
        if self.logits_scaling != 1.0:
            logits = logits / self.logits_scaling
        return logits, logits.argmax(dim=-1)


batch_size = 1
hidden_size = 2048
vocab = 128256
eps = 1e-5
logits_scaling = 1.0


def get_inputs():
    return [torch.randn(batch_size, hidden_size, dtype=torch.bfloat16)]


def get_init_inputs():
    return [hidden_size, vocab, eps, logits_scaling]


def bytes_moved(inputs, outputs):
    """The head once, x in, the logits and tokens out."""
    (x,) = inputs
    logits, token = outputs
    return 2 * (vocab * hidden_size + hidden_size + x.numel() + logits.numel()) + 8 * token.numel()


FAMILY = "decode"
DTYPE = "bfloat16"
POLICY = "strict"
TIMING = "graph"  # microseconds of work: launched from Python, the launch would be timed
SHAPES = [
    {"name": "granite_like", "hidden_size": 2048, "vocab": 16389, "logits_scaling": 8.0},
    {"name": "odd", "batch_size": 3, "hidden_size": 1003, "vocab": 4001, "hidden": True},
    {"name": "batch8", "batch_size": 8, "hidden_size": 1536, "vocab": 2053, "eps": 1e-6, "hidden": True},
]
