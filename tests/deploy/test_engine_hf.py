"""Against Hugging Face transformers (CPU, fp32): checkpoint loading by name and the adapter."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from engine_support import GPU
from engine_cpu_kernels import SOURCES

from autotuner.deploy import Slots, build_model, config_from_checkpoint
from autotuner.deploy.slots import SlotBinding

transformers = pytest.importorskip("transformers", reason="transformers is not installed (pip install transformers)")
pytest.importorskip("safetensors", reason="safetensors is not installed")

SMALL = dict(vocab_size=300, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=256)


def _hf(kind: str):
    torch.manual_seed(0)
    if kind == "llama":
        rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64, "rope_theta": 500000.0}
        cfg = transformers.LlamaConfig(**SMALL, rms_norm_eps=1e-5, tie_word_embeddings=True, rope_parameters=rope)
        model = transformers.LlamaForCausalLM(cfg)
    elif kind == "qwen2":
        cfg = transformers.Qwen2Config(**SMALL, rms_norm_eps=1e-6, tie_word_embeddings=False)
        model = transformers.Qwen2ForCausalLM(cfg)
    else:
        cfg = transformers.GraniteConfig(**SMALL, rms_norm_eps=1e-5, tie_word_embeddings=True, embedding_multiplier=12.0,
                                         residual_multiplier=0.22, attention_multiplier=0.015625, logits_scaling=8.0)
        model = transformers.GraniteForCausalLM(cfg)
    with torch.no_grad():  # non-trivial norms and biases, so a wrong mapping shows
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("kind", ["llama", "qwen2", "granite"])
def test_checkpoint_loads_and_matches_transformers(kind: str, tmp_path: Path) -> None:
    hf = _hf(kind)
    hf.save_pretrained(tmp_path, safe_serialization=True)
    cfg = config_from_checkpoint(tmp_path)
    assert cfg.qkv_bias == (kind == "qwen2")
    model = build_model(cfg, dtype=torch.float32, device="cpu", checkpoint=tmp_path)
    model.setup_caches(1, 64)
    tokens = torch.randint(0, 300, (1, 11), generator=torch.Generator().manual_seed(5))
    ours = model(tokens, torch.arange(11), kv_len=11)
    with torch.no_grad():
        theirs = hf(tokens).logits
    assert torch.allclose(ours, theirs, atol=2e-4, rtol=1e-4), float((ours - theirs).abs().max())


def test_missing_tensors_are_named(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from autotuner.deploy import WeightsError

    hf = _hf("llama")
    hf.save_pretrained(tmp_path, safe_serialization=True)
    (file,) = tmp_path.glob("*.safetensors")
    from safetensors.torch import load_file

    tensors = load_file(str(file))
    del tensors["model.layers.1.mlp.up_proj.weight"]
    save_file(tensors, str(file), metadata={"format": "pt"})
    with pytest.raises(WeightsError, match="up_proj"):
        build_model(config_from_checkpoint(tmp_path), dtype=torch.float32, device="cpu", checkpoint=tmp_path)


def _cpu_slots() -> Slots:
    """Slots bound to the CPU stand-ins (the binding is what is under test, not a kernel)."""
    import types

    bindings = {}
    for slot in ("rmsnorm", "rope", "silu_mul"):
        module = types.ModuleType(f"_hf_{slot}")
        exec(SOURCES[slot], module.__dict__)  # our own test source
        bindings[slot] = SlotBinding(slot, task=slot, kernel_id=1, evaluation_id=1, model_new=module.ModelNew, gpu=GPU)
    return Slots(bindings)


def test_patch_llama_instance_parity_and_undo() -> None:
    from autotuner.deploy.hf import patch_llama

    hf = _hf("llama").to(torch.bfloat16)
    tokens = torch.randint(0, 300, (2, 9), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        before = hf(tokens).logits
    slots = _cpu_slots()
    with patch_llama(hf, slots) as patch:
        assert patch.slots["rmsnorm"].endswith(": 5 modules")  # 2 layers x 2 + final
        assert patch.slots["silu_mul"].endswith(": 2 modules") and patch.slots["rope"].endswith(": 2 modules")
        with torch.no_grad():
            after = hf(tokens).logits
        used = {key[0] for key in slots._instances}
        assert used == {"rmsnorm", "rope", "silu_mul"}
        other = _hf("llama").to(torch.bfloat16)  # an unpatched model does not reach the kernels
        slots._instances.clear()
        with torch.no_grad():
            other(tokens)
        assert not slots._instances
    assert torch.equal(before, after)
    from transformers.models.llama import modeling_llama

    assert not getattr(modeling_llama.apply_rotary_pos_emb, "autotuner_dispatcher", False)
    assert "forward" not in vars(next(m for m in hf.modules() if isinstance(m, modeling_llama.LlamaRMSNorm)))


def test_patch_llama_class_before_creation() -> None:
    from transformers.models.llama import modeling_llama

    from autotuner.deploy.hf import patch_llama_class

    reference = _hf("llama").to(torch.bfloat16)
    tokens = torch.randint(0, 300, (1, 7), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = reference(tokens).logits
    slots = _cpu_slots()
    original = modeling_llama.LlamaRMSNorm.forward
    with patch_llama_class(slots):
        created = _hf("llama").to(torch.bfloat16)
        with torch.no_grad():
            got = created(tokens).logits
        assert {key[0] for key in slots._instances} == {"rmsnorm", "rope", "silu_mul"}
    assert modeling_llama.LlamaRMSNorm.forward is original
    assert torch.equal(expected, got)


def test_patch_llama_from_an_archive_on_cpu_patches_nothing(archive, record) -> None:
    from autotuner.deploy.hf import patch_llama

    record("rmsnorm", SOURCES["rmsnorm"])
    hf = _hf("llama").to(torch.bfloat16)
    patch = patch_llama(hf, archive)
    assert "re-verification needs a GPU" in patch.slots["rmsnorm"] or "no CUDA GPU" in patch.slots["rmsnorm"]
    assert not patch._undo
