"""freelunch: speech enhancement whose pruning gates tell you what is in the audio.

>>> import numpy as np, freelunch
>>> fx = freelunch.DynCPEnhancer.from_preset("balanced")
>>> y = fx(np.zeros(16000, np.float32), 16000)
>>> fx.properties.segments("vad")
[]
"""
from .chain import Chain
from .effect import DynCPEnhancer
from .track import PropertyTrack

__all__ = ["Chain", "DynCPEnhancer", "PropertyTrack"]
