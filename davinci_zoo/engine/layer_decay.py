"""Layer-wise learning-rate decay (BEiT / MAE fine-tuning) in few param groups."""

from __future__ import annotations

from ..registry import OPTIM_WRAPPER_CONSTRUCTORS
from .optim import merge_param_groups


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor:
    """Builds with mmpretrain's ``LearningRateDecayOptimWrapperConstructor``: a parameter of
    layer ``i`` of ``n`` (``model.get_layer_depth(name)``; DaVinci's layers:
    :mod:`davinci_zoo.models.davinci.layer_depth`) trains at
    ``lr * layer_decay_rate ** (n - 1 - i)``; ``norm_decay_mult``, ``bias_decay_mult``,
    ``flat_decay_mult`` and ``custom_keys`` ``decay_mult`` set the weight decay as there.

    Two differences: ``custom_keys``' ``lr_mult`` multiplies the learning rate as in
    mmengine's default constructor (mmpretrain's ignores it), and parameters whose settings are
    all equal share one param group (mmpretrain's gives each its own), as in
    :class:`~.optim.GroupedOptimWrapperConstructor`. Each group keeps ``layer_id`` and
    ``lr_scale`` (the layer's multiplier). ``layer_decay_rate=1.0`` (the default) is no decay.

    Config: ``optim_wrapper = dict(constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.75, ...), ...)``; ``paramwise_cfg`` must be given
    (mmengine skips the per-parameter settings without one). mmpretrain's constructor is
    imported when the optimizer is built (it loads torchvision), not when this class is
    registered.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None) -> None:
        rate = (paramwise_cfg or {}).get('layer_decay_rate', 1.0)
        if not 0.0 < rate <= 1.0:
            raise ValueError(f'layer_decay_rate must lie in (0, 1], got {rate}')
        self.optim_wrapper_cfg, self.paramwise_cfg = optim_wrapper_cfg, paramwise_cfg

    def __call__(self, model):
        from mmpretrain.engine.optimizers import LearningRateDecayOptimWrapperConstructor

        if not self.paramwise_cfg:
            raise ValueError(
                'LayerDecayOptimWrapperConstructor needs a paramwise_cfg (at least '
                'dict(layer_decay_rate=...)); without one mmengine sets no per-layer rate'
            )
        build = LearningRateDecayOptimWrapperConstructor(self.optim_wrapper_cfg, self.paramwise_cfg)
        wrapper = build(model)
        groups = []
        for group in wrapper.optimizer.param_groups:
            group = {key: value for key, value in group.items() if key != 'param_name'}
            multiplier = group.pop('lr_mult', 1.0)
            group['lr'] *= multiplier
            group['lr_scale'] *= multiplier
            groups.append(group)
        # a new optimizer holds no state yet: its groups can be replaced in place
        wrapper.optimizer.param_groups = merge_param_groups(groups)
        return wrapper


__all__ = ['LayerDecayOptimWrapperConstructor']
