"""A KV cache layer that grows in place, for the decoding loop of :mod:`stepdpo.generation.hf`.

transformers' ``DynamicLayer`` appends each new key and value with ``torch.cat``, which copies the
whole cache at every decoding step (the cost grows with the square of the completion length). Here
each layer's keys and values live in a buffer sized for the prompt plus the longest completion;
a step writes its position in place and the layer exposes a view of the filled part, so the
model sees exactly the tensors a ``DynamicLayer`` would hold. Dropping finished rows copies the
filled part of the kept rows once.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import DynamicLayer


class InPlaceLayer(DynamicLayer):
    """A ``DynamicLayer`` whose keys and values are views into a preallocated buffer."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, capacity: int):
        super().__init__()
        self.device = keys.device
        self.is_initialized = True
        self._length = keys.shape[-2]
        shape = (*keys.shape[:-2], capacity, keys.shape[-1])
        self._k = keys.new_empty(shape)
        self._v = values.new_empty((*values.shape[:-2], capacity, values.shape[-1]))
        self._k[..., : self._length, :] = keys
        self._v[..., : self._length, :] = values
        self._views()

    def _views(self) -> None:
        self.keys = self._k[..., : self._length, :]
        self.values = self._v[..., : self._length, :]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        end = self._length + key_states.shape[-2]
        if end > self._k.shape[-2]:  # past the planned length: grow (not reached by the decoding loop)
            grow = max(end, 2 * self._k.shape[-2]) - self._k.shape[-2]
            self._k = torch.cat([self._k, self._k.new_empty((*self._k.shape[:-2], grow, self._k.shape[-1]))], -2)
            self._v = torch.cat([self._v, self._v.new_empty((*self._v.shape[:-2], grow, self._v.shape[-1]))], -2)
        self._k[..., self._length : end, :] = key_states
        self._v[..., self._length : end, :] = value_states
        self._length = end
        self._views()
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        k, v = (
            self._k.new_empty((len(indices), *self._k.shape[1:])),
            self._v.new_empty((len(indices), *self._v.shape[1:])),
        )
        k[..., : self._length, :] = self.keys.index_select(0, indices)
        v[..., : self._length, :] = self.values.index_select(0, indices)
        self._k, self._v = k, v
        self._views()

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._k = self._k.repeat_interleave(repeats, dim=0)
        self._v = self._v.repeat_interleave(repeats, dim=0)
        self._views()

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove < 0:
            self._length = max(0, self._length + tokens_to_remove)
            self._views()
        else:
            super().crop(tokens_to_remove)


def grow_in_place(cache: Any, capacity: int) -> bool:
    """Swap each plain ``DynamicLayer`` of ``cache`` for an :class:`InPlaceLayer` holding up to
    ``capacity`` positions. Returns False (and changes nothing) where the cache is of another kind
    (sliding windows, static or quantized caches): those keep their own update rule."""
    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer) is not DynamicLayer or not layer.is_initialized for layer in layers):
        return False
    cache.layers = [InPlaceLayer(layer.keys, layer.values, capacity) for layer in layers]
    return True
