"""An optimizer wrapper constructor that keeps mmengine's ``paramwise_cfg`` but not its
one-group-per-parameter layout."""

from __future__ import annotations

import logging

from mmengine.logging import MMLogger, print_log
from mmengine.optim import DefaultOptimWrapperConstructor

from ..registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class GroupedOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor, then parameters whose settings are all equal share one
    param group.

    With a ``paramwise_cfg`` the default gives every parameter its own group (191 in the tiny
    scene config), and foreach/fused optimizers then step group by group, one small kernel
    per parameter and operation. Merged, the updates are the same and the step is cheaper.
    Use it with ``optim_wrapper = dict(constructor='GroupedOptimWrapperConstructor', ...)``.

    Parameters that do not train (``requires_grad=False``: a model's ``frozen_parts``) are
    left out, with or without a ``paramwise_cfg``, and one log line says how many (the default
    warns once per parameter with one, and keeps them without).
    """

    def __call__(self, model):
        quiet = DropFrozenSkipWarnings()
        logger = MMLogger.get_current_instance()
        logger.addFilter(quiet)
        try:
            wrapper = super().__call__(model)
        finally:
            logger.removeFilter(quiet)
        # a new optimizer holds no state yet: its groups can be replaced in place
        groups = without_frozen(wrapper.optimizer.param_groups)
        wrapper.optimizer.param_groups = merge_param_groups(groups)
        frozen = [param for param in model.parameters() if not param.requires_grad]
        if frozen:
            tensors = f'{len(frozen)} parameter tensor' + ('s' if len(frozen) > 1 else '')
            numbers = sum(param.numel() for param in frozen)
            print_log(
                f'left out of the optimizer, as they do not train (requires_grad=False): '
                f'{tensors} of {numbers:,} numbers',
                logger='current',
            )
        return wrapper


class DropFrozenSkipWarnings(logging.Filter):
    """Drops mmengine's "X is skipped since its requires_grad=False" (one per parameter)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().endswith('is skipped since its requires_grad=False')


def without_frozen(groups: list[dict]) -> list[dict]:
    """Param groups without parameters that do not train (mmengine keeps them when there is no
    ``paramwise_cfg``); groups left empty are dropped."""
    kept = [dict(group, params=[p for p in group['params'] if p.requires_grad]) for group in groups]
    return [group for group in kept if group['params']]


def merge_param_groups(groups: list[dict]) -> list[dict]:
    """Param groups -> one group per distinct set of options (first-seen order kept)."""
    merged: dict[str, dict] = {}
    for group in groups:
        options = {key: value for key, value in group.items() if key != 'params'}
        key = repr(sorted(options.items()))
        if key not in merged:
            merged[key] = dict(options, params=[])
        merged[key]['params'].extend(group['params'])
    return list(merged.values())


def build_optim_wrapper(model, cfg: dict):
    """mmengine's ``build_optim_wrapper`` in davinci_zoo's registry scope, so this project's
    constructors (and plugins') are found outside a Runner too (benchmarks, scripts)."""
    from mmengine.optim import build_optim_wrapper as build
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope('davinci_zoo'):
        return build(model, cfg)
