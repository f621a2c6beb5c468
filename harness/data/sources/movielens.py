"""MovieLens from GroupLens' own files: `ratings.dat` + `movies.dat` (ML-1M/10M) or `u.data` + `u.item` (ML-100K)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.core.errors import UserError
from harness.data.readers import check_width, interactions_frame, items_frame, read_text
from harness.data.sources import Source, files_fingerprint

_ML_GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]


def read_movielens(directory: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """MovieLens `ratings.dat` + `movies.dat` (ML-1M/10M, '::'-separated) or `u.data` + `u.item` (ML-100K).
    GroupLens ships these files in Latin-1, which is how they are decoded."""
    directory = Path(directory)
    if (directory / "ratings.dat").exists():
        ratings = [ln.split("::") for ln in read_text(directory / "ratings.dat", "latin-1").splitlines() if ln]
        movies = [ln.split("::") for ln in read_text(directory / "movies.dat", "latin-1").splitlines() if ln]
        check_width(ratings, 4, directory / "ratings.dat")
        check_width(movies, 3, directory / "movies.dat")
        inter = pd.DataFrame([r[:4] for r in ratings], columns=["user", "item", "rating", "timestamp"])
        items = pd.DataFrame(
            {
                "item": [m[0] for m in movies],
                "title": [m[1] for m in movies],
                "category": [m[2].replace("|", " ") for m in movies],
            }
        )
        return interactions_frame(inter, directory / "ratings.dat"), items_frame(items)
    if (directory / "u.data").exists():
        ratings = [ln.split("\t") for ln in read_text(directory / "u.data", "latin-1").splitlines() if ln]
        movies = [ln.split("|") for ln in read_text(directory / "u.item", "latin-1").splitlines() if ln]
        check_width(ratings, 4, directory / "u.data")
        check_width(movies, 5 + len(_ML_GENRES), directory / "u.item")
        inter = pd.DataFrame([r[:4] for r in ratings], columns=["user", "item", "rating", "timestamp"])
        genres = [" ".join(g for g, flag in zip(_ML_GENRES, m[5:]) if flag.strip() == "1") for m in movies]
        items = pd.DataFrame({"item": [m[0] for m in movies], "title": [m[1] for m in movies], "category": genres})
        return interactions_frame(inter, directory / "u.data"), items_frame(items)
    raise UserError(f"{directory}: no MovieLens ratings.dat or u.data found")


def _files(cfg: dict) -> list[Path]:
    d = Path(cfg["data.path"])
    return [d / n for n in (("ratings.dat", "movies.dat") if (d / "ratings.dat").exists() else ("u.data", "u.item"))]


SOURCE = Source(
    read=lambda cfg: (*read_movielens(cfg["data.path"]), None),
    fingerprint=lambda cfg: files_fingerprint(_files(cfg)),
    needs=("data.path",),
)
