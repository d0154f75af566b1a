"""Train the reader head (qa/reader.py) on labelled (question, sentence) pairs; seeded, resumable by cache.

    python train/reader_data.py           # once: .cache/reader/pairs.jsonl from fetched SQuAD 2.0 and SubjQA
    python train/fit_reader.py [--cache .cache/reader] [--epochs 4] [--out qa/reader]

1. Every distinct question and sentence is encoded once by the bundled MiniLM at the given precision
   (default: the index's auto choice) and its token vectors cached in the --cache folder (float16).
2. Two fold heads, each trained on the pairs of one fold of questions (train/reader_data.fold_of) and
   scoring the other: their held-out AUROC per source is printed, and they are saved in --cache
   so train/fit_answer.py can give SubjQA train questions reader scores from a head that never saw them.
3. The shipped head, trained on every pair with the same settings, written as safetensors with a
   manifest (version, sha256, sizes, data counts, held-out scores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qa.embed import Embedder, configure_offline  # noqa: E402
from qa.precision import resolve as resolve_precision  # noqa: E402
from qa.reader import MANIFEST, MAX_TOKENS, READER_DIR, READER_VERSION, WEIGHTS, head_module, pad, sha256_of  # noqa: E402

CACHE = Path(".cache/reader")


def token_table(texts: list[str], embedder: Embedder, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(all token vectors stacked, float16; start offset of each text, len(texts)+1 entries), cached."""
    if path.is_file():
        data = np.load(path)
        if int(data["count"]) == len(texts):
            return data["vectors"], data["offsets"]
    from tqdm import tqdm

    chunks, offsets = [], [0]
    for start in tqdm(range(0, len(texts), 512), desc="token vectors", unit="batch", disable=not sys.stderr.isatty()):
        for v in embedder.encode_tokens(texts[start : start + 512]):
            v = v[:MAX_TOKENS].astype(np.float16)
            chunks.append(v)
            offsets.append(offsets[-1] + len(v))
    vectors, offsets = np.concatenate(chunks), np.array(offsets, dtype=np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, vectors=vectors, offsets=offsets, count=len(texts))
    return vectors, offsets


def auroc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def train_head(rows: np.ndarray, q_index: np.ndarray, s_index: np.ndarray, y: np.ndarray, table, args, seed: int):
    """A head fitted on the given pair rows (AdamW, linear warm-up then cosine decay, binary cross-entropy)."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    vectors, offsets = table
    head = head_module(vectors.shape[1], args.hidden)
    steps = args.epochs * (len(rows) + args.batch - 1) // args.batch
    optimizer = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps, pct_start=0.05)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    head.train()
    for _ in range(args.epochs):
        order = rng.permutation(rows)
        for start in range(0, len(order), args.batch):
            batch = order[start : start + args.batch]
            q, qm = pad([vectors[offsets[i]:offsets[i + 1]].astype(np.float32) for i in q_index[batch]])
            s, sm = pad([vectors[offsets[i]:offsets[i + 1]].astype(np.float32) for i in s_index[batch]])
            loss = loss_fn(head(q, qm, s, sm), torch.from_numpy(y[batch].astype(np.float32)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    head.eval()
    return head


def predict(head, rows: np.ndarray, q_index, s_index, table, batch: int = 512) -> np.ndarray:
    import torch

    vectors, offsets = table
    out = np.zeros(len(rows))
    with torch.inference_mode():
        for start in range(0, len(rows), batch):
            part = rows[start : start + batch]
            q, qm = pad([vectors[offsets[i]:offsets[i + 1]].astype(np.float32) for i in q_index[part]])
            s, sm = pad([vectors[offsets[i]:offsets[i + 1]].astype(np.float32) for i in s_index[part]])
            out[start : start + len(part)] = head(q, qm, s, sm).double().numpy()
    return out


def save_head(head, folder: Path, extra: dict) -> str:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / WEIGHTS
    save_file({k: v.detach().contiguous() for k, v in head.state_dict().items()}, str(path))
    digest = sha256_of(path)
    (folder / MANIFEST).write_text(json.dumps({"version": READER_VERSION, "sha256": digest, **extra}, indent=1) + "\n",
                                   encoding="utf-8")
    return digest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", default=str(CACHE), help="folder of the pairs, token vectors and fold heads")
    parser.add_argument("--pairs", help="labelled pairs (default: pairs.jsonl in --cache)")
    parser.add_argument("--out", default=str(READER_DIR))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--precision", default="auto", help="precision of the token vectors (auto: as the index)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds-only", action="store_true", help="train and score the fold heads, write nothing shipped")
    args = parser.parse_args(argv)
    configure_offline()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    cache = Path(args.cache)
    args.pairs = args.pairs or str(cache / "pairs.jsonl")
    if not Path(args.pairs).is_file():
        print(f"error: {args.pairs} is missing; run train/reader_data.py first.", file=sys.stderr)
        return 2
    began = time.time()
    pairs = [json.loads(line) for line in open(args.pairs, encoding="utf-8")]
    texts = list(dict.fromkeys([p["q"] for p in pairs] + [p["s"] for p in pairs]))
    where = {t: i for i, t in enumerate(texts)}
    q_index = np.array([where[p["q"]] for p in pairs])
    s_index = np.array([where[p["s"]] for p in pairs])
    y = np.array([p["y"] for p in pairs], dtype=np.int64)
    fold = np.array([p["fold"] for p in pairs])
    source = np.array([p["src"] for p in pairs])
    precision = resolve_precision(args.precision)[0]
    print(f"{len(pairs)} pairs ({int(y.sum())} right), {len(set(p['group'] for p in pairs))} questions, "
          f"{len(texts)} distinct texts; token vectors at {precision}", file=sys.stderr)
    embedder = Embedder(None, precision=precision)
    table = token_table(texts, embedder, cache / f"tokens-{precision}.npz")
    print(f"token vectors: {len(table[0])} tokens ({time.time() - began:.0f} s)", file=sys.stderr)

    held_out = {}
    oof = np.zeros(len(pairs))
    for k in (0, 1):
        started = time.time()
        head = train_head(np.flatnonzero(fold != k), q_index, s_index, y, table, args, args.seed + k)
        rows = np.flatnonzero(fold == k)
        oof[rows] = predict(head, rows, q_index, s_index, table)
        save_head(head, cache / f"fold{k}", {"hidden": args.hidden, "dim": int(table[0].shape[1]), "fold": k})
        print(f"fold head {k}: trained on {int((fold != k).sum())} pairs in {time.time() - started:.0f} s", file=sys.stderr)
    for src in sorted(set(source)):
        rows = source == src
        held_out[src] = round(auroc(y[rows], oof[rows]), 4)
    held_out["all"] = round(auroc(y, oof), 4)
    print(json.dumps({"held_out_auroc": held_out}, indent=1))
    if args.folds_only:
        return 0
    started = time.time()
    head = train_head(np.arange(len(pairs)), q_index, s_index, y, table, args, args.seed)
    counts = {src: int((source == src).sum()) for src in sorted(set(source))}
    digest = save_head(head, Path(args.out), {
        "hidden": args.hidden, "dim": int(table[0].shape[1]), "precision_trained": precision,
        "trained_on": {"pairs": counts, "right": int(y.sum()), "epochs": args.epochs, "batch": args.batch,
                       "lr": args.lr, "seed": args.seed},
        "held_out_auroc": held_out})
    print(f"shipped head: {len(pairs)} pairs in {time.time() - started:.0f} s, sha256 {digest[:12]}; "
          f"total {time.time() - began:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
