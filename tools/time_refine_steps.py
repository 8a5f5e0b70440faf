"""Time the pieces of latent refinement on one image: a full step, a cheap step, a check.

    python tools/time_refine_steps.py ../shared/data/kodak/kodim05.png [--model walloc] [--quality 3]

A full step runs the decoder forward and backward; a cheap step runs the entropy model
exactly and the model's stand-in for the decoder (``linearised_distortion``); a check rounds
the latents and builds that stand-in (one decoder pass forward and backward). Prints the
median of ``--repeat`` calls of each (after one warm-up call), one thread. Run it on an idle
machine for figures worth quoting (docs/effort.md).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> int:
    from codec import api
    from codec.encoding import refine
    from codec.image_io import load_image

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("image")
    p.add_argument("--model", default="walloc")
    p.add_argument("--quality", type=float, default=3.0)
    p.add_argument("--repeat", type=int, default=6)
    args = p.parse_args()
    torch.set_num_threads(api.CPU_THREADS)
    net = api.resolve_model(args.model)
    x = torch.from_numpy(load_image(args.image).rgb.copy()).permute(2, 0, 1)[None].float() / 255
    height, width = x.shape[-2:]
    x, _, _ = api._pad(x, net.pad_multiple)
    q = args.quality
    with torch.inference_mode():
        y, z = net.analyse(x, q)
    generator = torch.Generator().manual_seed(refine.SEED)

    def median_seconds(work) -> float:
        work()
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            work()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    with refine._frozen(net), torch.inference_mode(False), torch.enable_grad():
        y = y.clone().requires_grad_(True)
        z = z.clone().requires_grad_(True)
        soft = lambda v: refine.sga_round(v, 0.5, generator)  # noqa: E731
        inverse_gain = net.gains.inverse_gain(q)

        def check():
            with torch.no_grad():
                out = net.build_latent_codec(integer=False).relaxed(y, z, torch.round)
            return refine._linearised_at(net, x, out["y_hat"] * inverse_gain, height, width)[1]

        def full():
            refine._quantised_cost(net, x, y, z, q, height, width, soft)[0].sum().backward()

        timings = {"full step": median_seconds(full), "check": median_seconds(check)}
        if hasattr(net, "linearised_distortion"):
            distortion = check()
            timings["cheap step"] = median_seconds(
                lambda: refine._linearised_cost(net, y, z, distortion, q, height * width, soft).sum().backward())
    print(f"{args.model}, {args.image}, quality {q:g}, {width}x{height}, one thread: "
          + ", ".join(f"{name} {seconds:.3f} s" for name, seconds in timings.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
