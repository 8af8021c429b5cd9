"""The network, its gates, the STFT, the losses, the cost model and the skipping engine.

The streaming engine and its framing run on numpy and numba alone; the torch side (the
network, the batched engine) loads on first use, so the effect runs without importing torch.
"""
from .engine import NetworkWeights, StreamingEngine

__all__ = ["BatchedEngine", "ConvFSENet", "GateTrace", "NetworkWeights", "StreamingEngine"]


def __getattr__(name: str):
    if name == "BatchedEngine":
        from .batched import BatchedEngine

        return BatchedEngine
    if name in ("ConvFSENet", "GateTrace"):
        from . import network

        return getattr(network, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
