"""Stage 1: the autoencoder. Sharp edges matter more than anything else here: the U-Net can
only place shapes as precisely as the decoder draws them, so the loss adds an image-gradient
term to plain L1 and keeps the KL weight tiny."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from demo import scenes
from demo.adversarial import Adversary, adaptive_weight
from demo.judge import accuracy
from demo.models import LATENT_SCALE, build_vae
from demo.trainutil import (
    Logger,
    StopFlag,
    lr_at,
    psnr,
    resume,
    save_atomic,
    set_lr,
    step_generator,
)

KL_WEIGHT = 1e-6  # per image, on the KL summed over latent elements
GRAD_WEIGHT = 1.0
# Shapes cover 5-15% of a picture: without extra weight an autoencoder first learns to
# draw only the background (it did: 18 dB with no shapes at all after 2000 steps).
FG_WEIGHT = 9.0
DECODER_LATENT_NOISE = 0.05  # in scaled (unit-variance) latent units


@dataclass
class VaeRun:
    out: Path
    steps: int = 4000
    batch: int = 16
    seed: int = 0
    lr: float = 1e-3
    crop: int = 32  # train on random crops (4x cheaper) for the first part of the run
    crop_frac: float = 0.6
    save_every: int = 50
    eval_every: int = 500
    subset: int | None = None  # cycle through only this many scenes (tests)
    adv_weight: float = 0.0  # decoder: patch-discriminator term (demo.adversarial), 0 = off
    adv_start: int = 0  # decoder: the discriminator joins at this step (pixel losses first)
    init_from: Path | None = None  # decoder: start from another run's decoder.pt, step 0
    denoised_from: Path | None = None  # decoder: a U-Net run whose x0 estimates it also learns
    denoised_share: float = 0.5  # decoder: share of each batch that is U-Net estimates
    stop_at: int | None = None  # stop (checkpoint saved) after this step, as if interrupted


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [n, h, w, 3] -> float [n, 3, h, w] in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def image_grad_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical finite differences: punishes blurred edges."""
    dxa, dxb = a[..., :, 1:] - a[..., :, :-1], b[..., :, 1:] - b[..., :, :-1]
    dya, dyb = a[..., 1:, :] - a[..., :-1, :], b[..., 1:, :] - b[..., :-1, :]
    return (dxa - dxb).abs().mean() + (dya - dyb).abs().mean()


def foreground_weights(x: torch.Tensor) -> torch.Tensor:
    """1 on the background (the border's median colour), 1 + FG_WEIGHT elsewhere."""
    border = torch.cat(
        [x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], dim=-1
    )  # [n, 3, 4 * side]
    bg = border.median(dim=-1).values[..., None, None]
    fg = ((x - bg).abs().sum(dim=1, keepdim=True) > 0.2).float()
    return 1.0 + FG_WEIGHT * fg


def recon_loss(rec: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Foreground-weighted L1 plus the edge (image-gradient) term."""
    w = foreground_weights(x)
    l1 = ((rec - x).abs() * w).sum() / (w.sum() * x.shape[1])
    return l1 + GRAD_WEIGHT * image_grad_l1(rec, x)


def vae_loss(vae, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    post = vae.encode(x).latent_dist
    z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen)
    rec = vae.decode(z).sample
    loss = recon_loss(rec, x) + KL_WEIGHT * post.kl().mean()
    return loss, rec


def train_batch(run: VaeRun, step: int) -> torch.Tensor:
    n = run.subset or 10**9
    idx = [(step * run.batch + i) % n for i in range(run.batch)]
    x = to_tensor(scenes.batch(idx, "train", run.seed)[0])
    if run.crop and step < run.crop_frac * run.steps:
        rng = np.random.default_rng([run.seed, step, 17])
        oy, ox = rng.integers(0, scenes.SIZE - run.crop + 1, size=2)
        x = x[:, :, oy : oy + run.crop, ox : ox + run.crop]
    return x


@torch.no_grad()
def eval_psnr(vae, n: int = 64, seed: int = 0) -> float:
    """Reconstruction PSNR (posterior mean) on held-out scenes."""
    vae.eval()
    x = to_tensor(scenes.batch(range(n), "eval", seed)[0])
    rec = vae.decode(vae.encode(x).latent_dist.mean).sample
    vae.train()
    return psnr(rec, x)


def train_vae(run: VaeRun, log: Logger) -> dict[str, float]:
    """Train (or resume) the VAE; checkpoints to run.out / 'vae.pt'."""
    ckpt_path = run.out / "vae.pt"
    vae = build_vae(run.seed)
    opt = torch.optim.AdamW(vae.parameters(), lr=run.lr, weight_decay=0.0)
    start = int(resume(ckpt_path, vae, opt, log, "VAE").get("step", 0))
    vae.train()
    first_loss = last_loss = float("nan")
    running = []
    flag = StopFlag()
    for step in range(start, run.steps):
        set_lr(opt, lr_at(step, run.steps, run.lr, warmup=100))
        x = train_batch(run, step)
        loss, _ = vae_loss(vae, x, step_generator(run.seed, step, 1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        running.append(loss.item())
        if step == start:
            first_loss = running[0]
        if (step + 1) % 50 == 0 or step + 1 == run.steps:
            last_loss = float(np.mean(running))
            log(f"vae step {step + 1}/{run.steps} loss {last_loss:.4f} res {x.shape[-1]}")
            running = []
        if (step + 1) % run.eval_every == 0:
            log(f"vae step {step + 1} eval PSNR {eval_psnr(vae, seed=run.seed):.2f} dB")
        stop = flag.stop or step + 1 == run.stop_at
        if (step + 1) % run.save_every == 0 or step + 1 == run.steps or stop:
            save_atomic(
                {"model": vae.state_dict(), "opt": opt.state_dict(), "step": step + 1},
                ckpt_path,
            )
        if stop:
            log(f"stopped at step {step + 1} (checkpoint saved)")
            break
    flag.close()
    result = {"first_loss": first_loss, "last_loss": last_loss, "psnr": eval_psnr(vae)}
    log(f"vae done: {result}")
    return result


def finetune_decoder(run: VaeRun, log: Logger) -> dict[str, float]:
    """Stage 2b: keep training the decoder (and post-quant conv) on the frozen encoder's
    latents (latents.pt, the U-Net's training data) while the U-Net trains on them. Small
    latent noise keeps it tolerant of imperfect U-Net outputs; `run.adv_weight` adds the
    patch discriminator; `run.denoised_from` mixes in the U-Net's own x0 estimates
    (demo.denoised_latents). Checkpoints to decoder.pt; export prefers it over vae_final.pt."""
    vae = build_vae(run.seed)
    vae.load_state_dict(torch.load(run.out / "vae_final.pt", map_location="cpu")["model"])
    latents = torch.load(run.out / "latents.pt", map_location="cpu")["latents"]
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    opt = torch.optim.AdamW(params, lr=run.lr, weight_decay=0.0)
    ckpt_path = run.out / "decoder.pt"
    state = resume(ckpt_path, vae, opt, log, "decoder")
    start = int(state.get("step", 0))
    if not state and run.init_from is not None:
        state = torch.load(run.init_from, map_location="cpu", weights_only=False)
        vae.load_state_dict(state["model"])
        log(f"decoder initialised from {run.init_from} (its step {state['step']}), new optimizer")
    denoised = None
    if run.denoised_from is not None:
        from demo.denoised_latents import DenoisedLatents

        denoised = DenoisedLatents.from_run(run.denoised_from, run.seed)
        log(f"decoder also learns from {run.denoised_from}'s x0 estimates")
    n_denoised = round(run.batch * run.denoised_share) if denoised is not None else 0
    adversary = Adversary(run.seed) if run.adv_weight > 0 else None
    if adversary is not None and "adversary" in state:
        adversary.load_state_dict(state["adversary"])
    vae.encoder.requires_grad_(False)
    vae.quant_conv.requires_grad_(False)
    flag = StopFlag()
    running: list[float] = []
    for step in range(start, run.steps):
        set_lr(opt, lr_at(step, run.steps, run.lr, warmup=20))
        gen = step_generator(run.seed, step, 3)
        idx = torch.randint(0, latents.shape[0], (run.batch,), generator=gen)
        images, batch_scenes = scenes.batch(idx.tolist(), "train", run.seed)
        x, z = to_tensor(images), latents[idx]
        if n_denoised:
            captions = [s.caption for s in batch_scenes[:n_denoised]]
            z = torch.cat([denoised(z[:n_denoised], captions, gen), z[n_denoised:]])
        z = z + DECODER_LATENT_NOISE * torch.randn(z.shape, generator=gen)
        rec = vae.decode(z / LATENT_SCALE).sample
        loss = recon_loss(rec, x)
        adversarial = adversary is not None and step >= run.adv_start
        if adversarial:
            adv = adversary.generator_loss(rec)
            weight = adaptive_weight(loss, adv, vae.decoder.conv_out.weight)
            loss = loss + run.adv_weight * weight * adv
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if adversarial:
            adversary.step(x, rec)
        running.append(loss.item())
        if (step + 1) % 50 == 0:
            log(f"decoder step {step + 1}/{run.steps} loss {np.mean(running):.4f}")
            running = []
        if (step + 1) % run.eval_every == 0:
            log(f"decoder step {step + 1} eval {decoder_eval(vae, run.seed)}")
        if (step + 1) % run.save_every == 0 or step + 1 == run.steps or flag.stop:
            extra = {"adversary": adversary.state_dict()} if adversary is not None else {}
            save_atomic(
                {"model": vae.state_dict(), "opt": opt.state_dict(), "step": step + 1, **extra},
                ckpt_path,
            )
        if flag.stop:
            log(f"stopped at step {step + 1} (checkpoint saved)")
            break
    flag.close()
    result = decoder_eval(vae, run.seed)
    log(f"decoder done: {result}")
    return result


@torch.no_grad()
def decoder_eval(vae, seed: int, n: int = 200) -> dict[str, float]:
    """PSNR and the judge's shape accuracy on plain reconstructions of held-out scenes: the
    ceiling for the shape accuracy of generated pictures."""
    vae.eval()
    images, scene_list = scenes.batch(range(n), "eval", seed)
    x = to_tensor(images)
    rec = vae.decode(vae.encode(x).latent_dist.mean).sample
    vae.train()
    pixels = ((rec.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
    shape = accuracy(pixels.numpy(), scene_list)["shape"]
    return {"psnr": round(psnr(rec, x), 2), "shape": round(shape, 3)}
