"""Time ``codec.encode`` at effort levels on three Kodak images (kodim05, 13, 21), model loaded once.

    python tools/time_effort_levels.py ../shared/data/kodak --efforts 0,1,2 [--model walloc] [--quality 3]

Prints the seconds of each encode, one thread (the API's). Run it on an idle machine for the
figures of docs/effort.md.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> int:
    import codec

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kodak", help="folder of the Kodak PNGs")
    p.add_argument("--efforts", default="0,1,2")
    p.add_argument("--model", default="walloc")
    p.add_argument("--quality", type=float, default=3.0)
    args = p.parse_args()
    images = [Path(args.kodak) / f"kodim{i}.png" for i in ("05", "13", "21")]
    codec.encode(images[0], model=args.model, quality=args.quality)  # loads the model
    for effort in (int(e) for e in args.efforts.split(",")):
        seconds = []
        for path in images:
            start = time.perf_counter()
            codec.encode(path, model=args.model, quality=args.quality, effort=effort)
            seconds.append(time.perf_counter() - start)
        print(f"{args.model} effort {effort}: " + " / ".join(f"{s:.1f}" for s in seconds) + " s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
