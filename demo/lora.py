"""Low-rank adapters for training the demo LoRA, and writing them in kohya's format.

Each adapted Linear / Conv2d keeps its frozen weight W and gains ``down`` (rank r, same
kernel, stride and padding as W) and a 1x1 ``up``; its output becomes
``W x + strength * alpha / r * up(down(x))``, which is exactly what a loader merging
``W + strength * alpha / r * up @ down`` computes. Names follow kohya / A1111:
``lora_unet_<module path with _>.lora_down.weight``, ``.lora_up.weight``, ``.alpha``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

# Attention, feed-forward and resnet layers of the U-Net's blocks (LoCon: convolutions too),
# and the text encoder's attention and MLP: the new word must be read (text encoder,
# cross-attention) and drawn (convolutions). "attention" keeps only the U-Net's
# transformer blocks, the one route of the caption into the U-Net: an adapter there acts
# through the caption, while a resnet convolution's acts on every picture.
UNET_SCOPES = ("down_blocks.", "mid_block.", "up_blocks.")
UNET_LAYERS = ("blocks", "attention")
TEXT_LAYERS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
PREFIXES = {"unet": "lora_unet_", "text_encoder": "lora_te_"}


class Adapter(nn.Module):
    """The trainable low-rank pair of one frozen layer (applied by a forward hook)."""

    def __init__(self, base: nn.Module, rank: int, alpha: float):
        super().__init__()
        if isinstance(base, nn.Conv2d):
            self.down = nn.Conv2d(
                base.in_channels,
                rank,
                base.kernel_size,
                base.stride,
                base.padding,
                base.dilation,
                bias=False,
            )
            self.up = nn.Conv2d(rank, base.out_channels, 1, bias=False)
        else:
            self.down = nn.Linear(base.in_features, rank, bias=False)
            self.up = nn.Linear(rank, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)  # starts as the base model
        self.rank, self.alpha, self.strength = rank, alpha, 1.0

    def hook(self, _module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        if self.strength == 0:
            return output
        return output + self.up(self.down(inputs[0])) * (self.strength * self.alpha / self.rank)


def targets(
    component: str, module: nn.Module, unet_layers: str = "blocks"
) -> list[tuple[str, nn.Module]]:
    kinds = (nn.Linear, nn.Conv2d)
    out = []
    for name, m in module.named_modules():
        if not isinstance(m, kinds):
            continue
        in_unet = component == "unet" and name.startswith(UNET_SCOPES)
        in_unet = in_unet and (unet_layers == "blocks" or ".attentions." in name)
        in_text = component == "text_encoder" and name.rsplit(".", 1)[-1] in TEXT_LAYERS
        if in_unet or in_text:
            out.append((name, m))
    return out


def kohya_name(component: str, path: str) -> str:
    """kohya's name of a module: CLIP paths start at ``text_model`` (transformers 5's
    CLIPTextModel names its modules without it)."""
    if component == "text_encoder" and not path.startswith("text_model."):
        path = "text_model." + path
    return PREFIXES[component] + path.replace(".", "_")


class LoraSet(nn.Module):
    """Adapters on the U-Net and text encoder, keyed by their kohya names."""

    def __init__(
        self, modules: dict[str, nn.Module], rank: int, alpha: float, unet_layers: str = "blocks"
    ):
        super().__init__()
        self.adapters = nn.ModuleDict()  # keyed by module path ("." -> "_", no dots allowed)
        self.kohya_names: dict[str, str] = {}
        self._hooks = []
        for component, module in modules.items():
            module.requires_grad_(False)
            for name, layer in targets(component, module, unet_layers):
                key = PREFIXES[component] + name.replace(".", "_")
                self.adapters[key] = Adapter(layer, rank, alpha)
                self.kohya_names[key] = kohya_name(component, name)
                self._hooks.append(layer.register_forward_hook(self.adapters[key].hook))

    def set_strength(self, strength: float) -> None:
        for a in self.adapters.values():
            a.strength = strength

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()

    def kohya_state_dict(self, dtype: torch.dtype = torch.float16) -> dict[str, torch.Tensor]:
        out = {}
        for internal, a in self.adapters.items():
            key = self.kohya_names[internal]
            out[f"{key}.lora_down.weight"] = a.down.weight.detach().to(dtype).contiguous()
            out[f"{key}.lora_up.weight"] = a.up.weight.detach().to(dtype).contiguous()
            out[f"{key}.alpha"] = torch.tensor(float(a.alpha), dtype=dtype)
        return out


def save_kohya(lora: LoraSet, path: Path, metadata: dict[str, str]) -> None:
    """fp16 safetensors with kohya-style ``ss_*`` metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(lora.kohya_state_dict(), str(path), metadata=metadata)
