"""The deploy side: a small Llama-family engine whose op slots run the archive's verified kernels.

    from archive import Archive
    from autotuner.deploy import LLAMA_3_2_1B, build_model, resolve_slots, generate, GraphDecoder

    with Archive.open() as archive:
        slots = resolve_slots(archive, "bfloat16", LLAMA_3_2_1B)   # re-verifies each kernel
    model = build_model(LLAMA_3_2_1B, slots=slots)                 # random weights (or checkpoint=DIR)
    model.setup_caches(batch=1, max_seq=1024)
    print(slots.report())                                          # slot -> kernel id / pytorch (reason)
    out = generate(model, prompt, 64, step=GraphDecoder(model).step)
"""

from autotuner.deploy.model_config import GRANITE_3_2_2B, LLAMA_3_2_1B, MODELS, QWEN_2_5_1_5B, ModelConfig, RopeScaling, get_config, tiny_config
from autotuner.deploy.generate import Generation, GraphDecoder, eager_step, generate, prefill, static_step
from autotuner.deploy.model import Transformer
from autotuner.deploy.resolve import resolve_slots
from autotuner.deploy.slots import SLOT_NAMES, SLOT_TASKS, SlotBinding, Slots
from autotuner.deploy.weights import WeightsError, build_model, config_from_checkpoint, load_checkpoint

__all__ = [
    "GRANITE_3_2_2B", "LLAMA_3_2_1B", "MODELS", "QWEN_2_5_1_5B", "SLOT_NAMES", "SLOT_TASKS", "Generation",
    "GraphDecoder", "ModelConfig", "RopeScaling", "SlotBinding", "Slots", "Transformer", "WeightsError",
    "build_model", "config_from_checkpoint", "eager_step", "generate", "get_config", "load_checkpoint", "prefill",
    "resolve_slots", "static_step", "tiny_config",
]
