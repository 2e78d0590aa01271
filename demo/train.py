"""Command line for the demo model's training stages (each resumable from data/demo-train/).

python -m demo.train vae --steps 5000 --batch 16 --threads 1
python -m demo.train latents --count 40000
python -m demo.train unet --steps 1500 --batch 64 --threads 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from demo.trainutil import DEFAULT_OUT, Logger


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("stage", choices=["vae", "latents", "unet", "decoder"])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--count", type=int, default=40000, help="latents: scenes to encode")
    p.add_argument("--aux-weight", type=float, default=0.0, help="unet: text attribute heads")
    p.add_argument("--eval-every", type=int, default=250, help="unet: steps between evals")
    p.add_argument("--eval-prompts", type=int, default=48, help="unet: held-out prompts judged")
    p.add_argument("--crop-frac", type=float, default=0.7, help="vae: share of steps on crops")
    p.add_argument("--adv-weight", type=float, default=0.0, help="decoder: discriminator")
    p.add_argument("--adv-start", type=int, default=0, help="decoder: discriminator from")
    p.add_argument(
        "--init-from", type=Path, default=None, help="unet: a run's unet.pt; decoder: decoder.pt"
    )
    p.add_argument("--denoised-from", type=Path, default=None, help="decoder: U-Net run folder")
    p.add_argument("--denoised-share", type=float, default=0.5, help="decoder: of each batch")
    p.add_argument("--subset", type=int, default=None, help="cycle through N scenes only")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    log = Logger(a.out / f"{a.stage}.log")
    log(f"start {vars(a)}")
    overrides = {k: v for k, v in (("steps", a.steps), ("batch", a.batch), ("lr", a.lr)) if v}
    if a.stage == "vae":
        from demo.train_vae import VaeRun, train_vae

        run = VaeRun(out=a.out, seed=a.seed, subset=a.subset, crop_frac=a.crop_frac, **overrides)
        train_vae(run, log)
    elif a.stage == "decoder":
        from demo.train_vae import VaeRun, finetune_decoder

        run = VaeRun(
            out=a.out,
            seed=a.seed,
            crop=0,
            adv_weight=a.adv_weight,
            adv_start=a.adv_start,
            init_from=a.init_from,
            denoised_from=a.denoised_from,
            denoised_share=a.denoised_share,
            **{"lr": 3e-4, **overrides},
        )
        finetune_decoder(run, log)
    elif a.stage == "latents":
        from demo.train_unet import encode_latents

        encode_latents(a.out, a.count, a.seed, log)
    else:
        from demo.evaluate import training_eval
        from demo.train_unet import UnetRun, train_unet

        run = UnetRun(
            out=a.out,
            seed=a.seed,
            subset=a.subset,
            eval_every=a.eval_every,
            aux_weight=a.aux_weight,
            init_from=a.init_from,
            **overrides,
        )
        train_unet(run, log, eval_fn=training_eval(a.out, a.seed, n=a.eval_prompts))


if __name__ == "__main__":
    main()
