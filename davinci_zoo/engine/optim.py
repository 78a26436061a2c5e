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
    left out, as by the default, with one log line instead of a warning per parameter.
    """

    def __call__(self, model):
        skipped = FrozenSkipCounter()
        logger = MMLogger.get_current_instance()
        logger.addFilter(skipped)
        try:
            wrapper = super().__call__(model)
        finally:
            logger.removeFilter(skipped)
        if skipped.count:
            frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
            tensors = f'{skipped.count} parameter tensor' + ('s' if skipped.count > 1 else '')
            print_log(
                f'left out of the optimizer, as they do not train (requires_grad=False): '
                f'{tensors} of {frozen:,} numbers',
                logger='current',
            )
        # a new optimizer holds no state yet: its groups can be replaced in place
        wrapper.optimizer.param_groups = merge_param_groups(wrapper.optimizer.param_groups)
        return wrapper


class FrozenSkipCounter(logging.Filter):
    """Counts, and drops, mmengine's "X is skipped since its requires_grad=False" warnings."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().endswith('is skipped since its requires_grad=False'):
            self.count += 1
            return False
        return True


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
