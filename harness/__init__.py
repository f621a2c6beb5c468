"""srt-scale: scaling-law studies of the Scalable Recommendation Transformer (SRT)."""

__version__ = "0.1.0"
