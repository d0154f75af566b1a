"""A Ray build (1 and 2 workers) against the local build of the same corpus, in one run.

    python bench/ray_build.py [--copies 20] [--json]

The corpus is the seed reviews copied (bench/build.py's make_corpus). Each build is a full rebuild with
the same embedder precision; the Ray builds start a local Ray runtime, load the model once per worker and
shut Ray down, all inside the timed call: that start-up is the price of scaling out. Prints
ray_build_over_local (local time / Ray time, so 1.0 is as fast and the target is >= 0.8) per worker count.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from _common import timed
from build import make_corpus

from qa.build import open_index
from qa.embed import Embedder, configure_offline


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="one copy, one worker: the script still runs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.copies = 1
    configure_offline()
    os.environ.setdefault("RAY_ADDRESS", "")  # a local runtime, whatever the shell says
    embedder = Embedder()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        make_corpus(corpus, args.copies)
        store, _ = open_index(corpus, Path(tmp) / "warm", embedder, progress=False)  # warm-up, and the size
        out = {"passages": len(store.passages), "cpus": os.cpu_count()}
        out["local_s"] = round(timed(lambda: open_index(corpus, Path(tmp) / "local", embedder, rebuild=True,
                                                         progress=False)), 2)
        for workers in (1,) if args.smoke else (1, 2):
            seconds = timed(lambda: open_index(corpus, Path(tmp) / f"ray{workers}", embedder, rebuild=True,
                                               progress=False, engine="ray", workers=workers))
            out[f"ray_{workers}_workers_s"] = round(seconds, 2)
            out[f"ray_build_over_local_{workers}"] = round(out["local_s"] / seconds, 3)
    print(f"{out['passages']} passages on {out['cpus']} CPUs: local {out['local_s']} s; "
          f"Ray 1 worker {out['ray_1_workers_s']} s ({out['ray_build_over_local_1']}x local speed)"
          + (f"; Ray 2 workers {out['ray_2_workers_s']} s ({out['ray_build_over_local_2']}x; target >= 0.8)"
             if "ray_2_workers_s" in out else ""))
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
