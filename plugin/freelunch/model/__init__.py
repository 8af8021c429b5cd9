"""The network, its gates, the STFT, the losses, the cost model and the skipping engine."""
from .batched import BatchedEngine
from .engine import StreamingEngine
from .network import ConvFSENet, GateTrace

__all__ = ["BatchedEngine", "ConvFSENet", "GateTrace", "StreamingEngine"]
