"""What objectives and heads declare they need, and the checks the model makes with it.

An objective or head names the batch ``inputs`` it reads (keys of the preprocessed
``inputs`` dict, e.g. ``('images', 'caption')``) and the model ``parts`` it uses beyond the
shared embedder, encoder and decoder. The one optional part today is the frozen
``'image_tokenizer'``: the model builds it (and reads its weight file) only if something
declares it.
"""

from __future__ import annotations

IMAGE_TOKENIZER = 'image_tokenizer'
#: The parts every DaVinci has.
SHARED_PARTS = ('image_embedder', 'encoder', 'decoder')


class ObjectiveStarvedError(ValueError):
    """A configured objective gave no loss in its first training steps (no data reached it)."""


class ComponentArgumentError(ValueError):
    """A component's config (the model, a head, an objective, the data preprocessor, an
    image tokenizer, a scorer, a dataset, a transform, a metric) gives arguments it cannot be
    built with: a value out of range, two settings that contradict each other (some found
    only once data flows, e.g. a batch size against a mixture's counts, a metric that needs
    labels on a split without them). The tools print it as one line."""


class FrozenPartError(ComponentArgumentError):
    """``frozen_parts`` names something that is not a submodule of the model."""


def component_class(config):
    """The class an OBJECTIVES / HEADS config (or an already built module) stands for."""
    from ..registry import HEADS, OBJECTIVES

    if not isinstance(config, dict):
        return type(config)
    kind = config['type']
    if not isinstance(kind, str):
        return kind
    return OBJECTIVES.find(kind) or HEADS.get(kind)


def parts_used(configs) -> set[str]:
    """The ``parts`` declared by objective / head configs (None entries are skipped)."""
    used: set[str] = set()
    for config in configs:
        if config is not None:
            used.update(getattr(component_class(config), 'parts', ()))
    return used


def all_ranks_any(flag: bool) -> bool:
    """``flag`` or-ed over every rank (one all-reduce when a process group is running)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    value = torch.tensor([int(flag)], device='cuda' if dist.get_backend() == 'nccl' else 'cpu')
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
