"""Catch on the CPU the device mix-ups that only a GPU would raise.

The model and the data go to the ``meta`` device (shapes, no values) and :class:`StrictDevices` watches
every torch call: where CUDA would raise for a tensor left on the CPU, it raises too. CUDA accepts a
CPU tensor of zero dimensions in any op and a CPU index into a device tensor; it refuses a CPU
tensor indexed by a device index and any other mix of a CPU tensor with a device tensor. (Plain
indexing of a CPU tensor by a meta index does not raise on its own, hence this watch.)
"""
from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree

# Calls that move or copy between devices on purpose.
_MOVES = {torch.Tensor.to, torch.Tensor.cpu, torch.Tensor.copy_, torch.Tensor.__setitem__}


class DeviceMixError(RuntimeError):
    pass


class StrictDevices(TorchFunctionMode):
    def __init__(self, device: str = "meta") -> None:
        super().__init__()
        self.device = device

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in _MOVES:
            self._check(func, args, kwargs)
        return func(*args, **kwargs)

    def _check(self, func, args, kwargs) -> None:
        tensors = [t for t in _pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        on_device = [t for t in tensors if t.device.type == self.device]
        if not on_device:
            return
        if func is torch.Tensor.__getitem__:
            if args[0].device.type == "cpu" and args[0].dim() > 0:
                raise DeviceMixError(f"a CPU tensor {tuple(args[0].shape)} indexed by a {self.device} index")
            return
        on_cpu = [t for t in tensors if t.device.type == "cpu" and t.dim() > 0]
        if on_cpu:
            raise DeviceMixError(f"{getattr(func, '__name__', func)} mixes {self.device} tensors with CPU tensors "
                                 f"{[tuple(t.shape) for t in on_cpu]}")
