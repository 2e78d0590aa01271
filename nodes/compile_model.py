"""CompileModel: a model whose U-Net runs through torch.compile (opt-in; ComfyUI's
TorchCompileModel)."""

from __future__ import annotations

from typing import Any, Literal

from graph.node import Node
from nodes.sd.handles import ModelHandle
from nodes.sd.unet_compile import CompileError, compiled_model
from nodes.types import Model


class CompileModel(Node):
    """Compile the model's U-Net with torch.compile. The first Sample after it pays the
    compile (tens of seconds to minutes); later images of the same size reuse it, also
    across jobs (the compiled U-Net is kept in the model store). mode "reduce-overhead"
    adds CUDA graphs on CUDA (fixed shapes). On the CPU, inductor needs a C++ compiler;
    backend aot_eager traces the same way but runs torch's own kernels (no speed-up)."""

    CATEGORY = "loaders"
    OUTPUTS = {"model": Model}
    model: Model
    mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = (
        "default"
    )
    backend: Literal["inductor", "cudagraphs", "aot_eager"] = "inductor"

    @classmethod
    def check(cls, inputs: dict[str, Any], choices: Any) -> list[tuple[str, str, str]]:
        """The modes are inductor's: refused with another backend before anything loads."""
        if inputs["mode"] != "default" and inputs["backend"] != "inductor":
            message = f"mode {inputs['mode']!r} is the inductor backend's; use mode 'default'"
            return [("mode", "invalid_combination", message)]
        return []

    def run(self, ctx: Any, model: ModelHandle, mode: str, backend: str) -> dict[str, Any]:
        try:
            return {"model": compiled_model(model, mode, backend)}
        except CompileError as exc:
            raise CompileError(f"CompileModel: {exc}") from exc
