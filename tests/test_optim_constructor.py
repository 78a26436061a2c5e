"""GroupedOptimWrapperConstructor: mmengine's paramwise settings, in few param groups."""

from __future__ import annotations

import logging

import pytest
import torch
from mmengine.logging import MMLogger
from torch import nn

from davinci_zoo.engine.optim import build_optim_wrapper


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.relative_bias_table = nn.Parameter(torch.zeros(3))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.norm(self.linear(x))).sum() + self.relative_bias_table.sum()


def build(constructor: str, seed: int = 0):
    torch.manual_seed(seed)
    model = Tiny()
    cfg = dict(
        constructor=constructor,
        optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.1),
        paramwise_cfg=dict(
            norm_decay_mult=0.0,
            bias_decay_mult=0.0,
            custom_keys={'relative_bias_table': dict(decay_mult=0.0, lr_mult=20.0)},
        ),
    )
    return model, build_optim_wrapper(model, cfg)  # in davinci_zoo's registry scope


def settings(wrapper) -> dict[int, tuple[float, float]]:
    """id(param) -> (lr, weight decay) as the optimizer holds them."""
    return {
        id(param): (group['lr'], group['weight_decay'])
        for group in wrapper.optimizer.param_groups
        for param in group['params']
    }


def test_parameters_keep_their_settings_in_fewer_groups_and_step_alike():
    plain_model, plain = build('DefaultOptimWrapperConstructor')
    model, grouped = build('GroupedOptimWrapperConstructor')
    assert len(plain.optimizer.param_groups) == 7  # one per parameter
    assert len(grouped.optimizer.param_groups) == 3  # decayed, not decayed, the 20x table
    by_name = dict(model.named_parameters())
    held = settings(grouped)
    assert held[id(by_name['linear.weight'])] == (1e-2, 0.1)
    assert held[id(by_name['linear.bias'])] == (1e-2, 0.0)
    assert held[id(by_name['norm.weight'])] == (1e-2, 0.0)
    assert held[id(by_name['relative_bias_table'])] == (0.2, 0.0)
    plain_by_name = dict(plain_model.named_parameters())
    plain_held = settings(plain)
    for name, param in by_name.items():
        assert held[id(param)] == plain_held[id(plain_by_name[name])], name
    start = {name: param.detach().clone() for name, param in by_name.items()}
    inputs = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    for _ in range(3):
        plain.update_params(plain_model(inputs))
        grouped.update_params(model(inputs))
    for name, param in by_name.items():
        torch.testing.assert_close(param, plain_by_name[name], atol=1e-6, rtol=0)
    assert all(not torch.equal(param, start[name]) for name, param in by_name.items())


class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.mark.parametrize('paramwise', [True, False])
def test_frozen_parameters_are_left_out_with_one_log_line(paramwise):
    """With a paramwise_cfg mmengine warns once per frozen parameter, without one it keeps
    them in the optimizer: either way they are left out, with one line."""
    logger, records = MMLogger.get_current_instance(), Records()
    logger.addHandler(records)
    torch.manual_seed(0)
    model = Tiny()
    model.linear.requires_grad_(False)
    cfg = dict(
        constructor='GroupedOptimWrapperConstructor',
        optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.1),
    )
    if paramwise:
        cfg['paramwise_cfg'] = dict(norm_decay_mult=0.0)
    try:
        wrapper = build_optim_wrapper(model, cfg)
    finally:
        logger.removeHandler(records)
    held = {id(p) for group in wrapper.optimizer.param_groups for p in group['params']}
    assert held == {id(p) for p in model.parameters() if p.requires_grad} and len(held) == 5
    assert not [line for line in records.messages if 'is skipped since' in line]
    summary = ': 2 parameter tensors of 20 numbers'
    assert len([line for line in records.messages if line.endswith(summary)]) == 1
