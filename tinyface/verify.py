"""Comparing embeddings: cosine similarity and the same/different decision."""
import numpy as np

# Threshold on cosine similarity for the bundled MobileFaceNet, chosen on the
# LFW hard pairs shipped in tests/data (see README, "Verification threshold").
DEFAULT_THRESHOLD = 0.35


def cosine_similarity(a, b):
    """cos(a, b) = a.b / (|a| |b|) of two embedding vectors, in float64."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denom) if denom > 0 else 0.0


def threshold_for(model):
    """The similarity threshold for ``model``'s embeddings: ``DEFAULT_THRESHOLD``."""
    return DEFAULT_THRESHOLD
