"""Registries: scope, parents, fallback, lookups that explain themselves, listing."""

import pytest
import torch
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import DefaultScope

import davinci_zoo
from davinci_zoo import plugins
from davinci_zoo.registry import (
    BACKBONES,
    HOOKS,
    IMAGE_TOKENIZERS,
    MODELS,
    OBJECTIVES,
    REGISTRIES,
    SCOPE,
    ComponentConflictError,
    ComponentNotFoundError,
    ZooRegistry,
)


def test_required_registries_exist_with_our_scope():
    for name in (
        'model',
        'backbone',
        'image tokenizer',
        'objective',
        'head',
        'dataset',
        'transform',
        'metric',
        'hook',
    ):
        assert REGISTRIES[name].scope == SCOPE
    assert MODELS.parent.scope == 'mmpretrain'
    assert MODELS.parent.parent is MMENGINE_MODELS


def test_default_scope_builds_ours_mmpretrain_and_mmengine_by_plain_name():
    with DefaultScope.overwrite_default_scope(SCOPE):
        hook = HOOKS.build(dict(type='RNGStateHook'))
        resnet = MMENGINE_MODELS.build(dict(type='ResNet', depth=18))
        optimizer = MMENGINE_OPTIMIZERS.build(
            dict(type='AdamW', params=[torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        )
    assert type(hook).__name__ == 'RNGStateHook'
    assert type(resnet).__module__.startswith('mmpretrain.')
    assert isinstance(optimizer, torch.optim.AdamW)


def test_own_registries_fall_back_to_models():
    assert BACKBONES.get('ResNet').__module__.startswith('mmpretrain.')
    assert OBJECTIVES.fallback is MODELS and IMAGE_TOKENIZERS.fallback is MODELS


def test_unknown_name_suggests_close_names():
    with pytest.raises(ComponentNotFoundError) as error:
        HOOKS.get('RNGStateHok')
    message = str(error.value)
    assert "'RNGStateHook'" in message and 'did you mean' in message
    assert 'RNGStateHok' not in HOOKS


def test_unknown_name_in_a_build_raises_the_same_error():
    with (
        pytest.raises(ComponentNotFoundError, match='did you mean'),
        DefaultScope.overwrite_default_scope(SCOPE),
    ):
        MMENGINE_MODELS.build(dict(type='ResNett', depth=18))


def test_two_providers_make_only_that_name_unbuildable(monkeypatch):
    registry = ZooRegistry('test conflicts registry')
    first = type('Clash', (), {'__module__': 'first_pkg.mod'})
    second = type('Clash', (), {'__module__': 'second_pkg.mod'})
    other = type('Unique', (), {'__module__': 'second_pkg.mod'})
    providers = {
        'first_pkg': plugins.Provider('first-dist', '1.0'),
        'second_pkg': plugins.Provider('second-dist', '2.0'),
    }
    monkeypatch.setattr(plugins, 'provider_of', lambda obj: providers[obj.__module__.split('.')[0]])
    registry.register_module(module=first)
    registry.register_module(module=second)
    registry.register_module(module=other)
    with pytest.raises(ComponentConflictError) as error:
        registry.get('Clash')
    assert 'first-dist 1.0' in str(error.value) and 'second-dist 2.0' in str(error.value)
    assert registry.get('Unique') is other
    assert 'Clash' not in registry


def test_same_provider_registering_a_name_twice_is_an_error(monkeypatch):
    registry = ZooRegistry('test duplicate registry')
    monkeypatch.setattr(plugins, 'provider_of', lambda obj: plugins.Provider('one-dist', '1'))
    registry.register_module(module=type('Twice', (), {}))
    with pytest.raises(KeyError, match='registered twice'):
        registry.register_module(module=type('Twice', (), {}))


def test_list_components_filters_by_registry_and_pattern():
    rows = davinci_zoo.list_components('hooks', 'RNG*')
    assert [(r.registry, r.name, r.provider, r.module) for r in rows] == [
        ('hook', 'RNGStateHook', 'davinci-zoo', 'davinci_zoo.engine.hooks')
    ]
    assert rows[0].version == davinci_zoo.__version__
    assert davinci_zoo.list_components('hook', 'NoSuch*') == []
    everything = davinci_zoo.list_components()
    assert {r.registry for r in everything} >= {'hook'}
    with pytest.raises(ValueError, match='unknown registry'):
        davinci_zoo.list_components('no such registry')


@pytest.mark.parametrize(
    'setting, name, expected',
    [
        (None, 'a', True),
        ('', 'a', True),
        ('none', 'a', False),
        ('a,b', 'a', True),
        ('a,b', 'c', False),
        ('-a', 'a', False),
        ('-a', 'b', True),
        ('-a,-b', 'b', False),
        (' a , b ', 'b', True),
    ],
)
def test_plugin_selection_setting(setting, name, expected):
    assert plugins.selected(name, setting) is expected


def test_plugin_selection_refuses_a_mixed_setting():
    with pytest.raises(ValueError, match='mixes'):
        plugins.selected('a', 'a,-b')


def test_a_core_that_fails_to_import_fails_every_lookup_the_same_way(monkeypatch, tmp_path):
    """The second lookup must not report 'not registered; did you mean ...' instead of the
    import error (the loader must not count a failed core as loaded)."""
    from davinci_zoo import plugins

    (tmp_path / 'broken_core_for_test.py').write_text('raise ImportError("core is broken")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugins, 'CORE_MODULE', 'broken_core_for_test')
    monkeypatch.setattr(plugins, '_state', plugins._State())
    for _ in range(2):
        with pytest.raises(ImportError, match='core is broken'):
            MODELS.get('DaVinci')
    assert not plugins._state.loaded and not plugins._state.loading
