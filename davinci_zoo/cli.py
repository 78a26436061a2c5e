"""What the command-line tools share: config loading, strict overrides, one-line errors.

User mistakes (a missing file, a typo in a key or a type name, a checkpoint that does not fit,
a component argument out of range, a data file not in its published layout, data with more bad
rows than allowed) end a tool with ``error: <one line>`` on stderr and exit status 2; bugs
still show their traceback.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from collections.abc import Callable, Sequence

from mmengine.config import Config, DictAction

from .checkpoint import CheckpointError


class UserError(Exception):
    """A mistake in how a tool was called; printed as one line, without a traceback."""


def _user_error_types() -> tuple[type[BaseException], ...]:
    from .datasets.bad_rows import BadDataError, DataFileError
    from .models.parts import ComponentArgumentError
    from .registry import ComponentLookupError

    return (
        UserError,
        CheckpointError,
        ComponentLookupError,
        FileNotFoundError,
        ComponentArgumentError,
        BadDataError,
        DataFileError,
    )


def one_line(error: BaseException) -> str:
    """The error's message on one line. An error a DataLoader worker raised comes back with
    the worker's traceback in its message; only the original message is kept."""
    text = str(error)
    if 'Original Traceback' in text:  # torch's ExceptionWrapper.reraise
        text = text.strip().splitlines()[-1]
        text = text.removeprefix(f'{type(error).__module__}.{type(error).__qualname__}: ')
    return ' '.join(text.split())


def run_tool(main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None):
    """Run a tool's ``main`` and turn user errors into a one-line message and exit status 2."""
    try:
        return main(argv)
    except _user_error_types() as error:
        message = one_line(error)
    except TypeError as error:
        message = constructor_argument_error(error)
        if message is None:
            raise  # a bug, not a config mistake: keep the traceback
    print(f'error: {message}', file=sys.stderr)
    raise SystemExit(2) from None


def constructor_argument_error(error: TypeError) -> str | None:
    """A one-line message when ``error`` is a config naming an argument a component does not
    take (or leaving out one it needs), i.e. mmengine's registry call ``obj_cls(**args)``
    itself failed; None for any other TypeError."""
    frame = None
    trace = error.__traceback__
    while trace is not None:
        frame, trace = trace.tb_frame, trace.tb_next
    if frame is None or frame.f_code.co_name != 'build_from_cfg' or 'obj_cls' not in frame.f_locals:
        return None
    component = frame.f_locals['obj_cls']
    name = getattr(component, '__name__', str(component))
    text = str(error)
    unknown = re.search(r"got an unexpected keyword argument '(\w+)'", text)
    if unknown:
        import inspect

        argument = unknown.group(1)
        try:
            accepted = [p for p in inspect.signature(component).parameters if p != 'self']
        except (TypeError, ValueError):
            accepted = []
        close = difflib.get_close_matches(argument, accepted, n=3)
        if close:
            hint = f' (did you mean {" or ".join(repr(c) for c in close)}?)'
            return f'{name} has no argument {argument!r}{hint}; check the config and --cfg-options'
        takes = f' (it takes: {", ".join(accepted)})' if accepted else ''
        return (
            f'{name} has no argument {argument!r}{takes}; if a child config gave this entry '
            "another type, the base entry's keys were merged into it: add _delete_=True to the "
            "child's dict (docs/custom_data.md), else check the config and --cfg-options"
        )
    missing = re.search(r'missing \d+ required (?:\w+ )?arguments?: (.+)$', text)
    if missing:
        return f'{name} needs the argument(s) {missing.group(1)}; add them to its config entry'
    return None


def positive_int(text: str) -> int:
    """An argparse ``type`` for counts: an int of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
    return value


def load_config(path: str) -> Config:
    """Read a config file, with a one-line error when it is missing or broken.

    ``package::relative/path.py`` names a config shipped inside an installed Python package
    (a plugin's task configs): the file at that path under the package's folder.
    """
    if '::' in path and not os.path.isfile(path):
        path = package_config_path(path)
    if not os.path.isfile(path):
        raise UserError(f'config file {path} does not exist')
    try:
        return Config.fromfile(path)
    except SyntaxError as error:
        raise UserError(
            f'config {path} has a syntax error at line {error.lineno}: {error.msg}'
        ) from None
    except (KeyError, ImportError, NameError) as error:
        raise UserError(f'config {path} cannot be read: {type(error).__name__}: {error}') from None


def package_config_path(name: str) -> str:
    """``package::relative/path.py`` -> the file's path inside the installed ``package``."""
    import importlib.util

    package, _, relative = name.partition('::')
    try:
        spec = importlib.util.find_spec(package) if package.isidentifier() else None
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f'config {name}: {package!r} is not an installed Python package (pip install the '
            'plugin that ships the config, or give the config file path)'
        )
    folder = list(spec.submodule_search_locations)[0]
    path = os.path.join(folder, relative)
    if not os.path.isfile(path):
        raise UserError(f'config {name}: the package {package} has no file {relative} ({path})')
    return path


def add_cfg_options_argument(parser) -> None:
    """The OpenMMLab ``--cfg-options`` flag, with the zoo's rule for new keys."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='override config values, e.g. model.encoder.num_layers=2 '
        'train_dataloader.batch_size=8. A key path must already exist in the config '
        '(typos are errors); prefix a genuinely new key with "+", e.g. +model.new_key=1.',
    )


def apply_cfg_options(cfg: Config, options: dict) -> None:
    """Merge ``--cfg-options`` into ``cfg``, refusing key paths the config does not have."""
    merged = {}
    for key, value in (options or {}).items():
        if key.startswith('+'):
            merged[key[1:]] = value
            continue
        _check_value_type(cfg, key, value)
        merged[key] = value
    if merged:
        cfg.merge_from_dict(merged, allow_list_keys=True)


def _check_value_type(cfg: Config, key: str, value) -> None:
    """Refuse a text where the config holds a number or a flag (``batch_size=abc``)."""
    current = _check_key_path(cfg, key)
    if isinstance(current, bool):
        expected = 'True or False'
        fits = isinstance(value, bool)
    elif isinstance(current, (int, float)):
        expected = 'a number'
        fits = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        return
    if not fits:
        raise UserError(
            f'--cfg-options {key}={value!r}: expected {expected} (the config has {current!r})'
        )


def _check_key_path(cfg: Config, key: str):
    """The value at ``key``; a UserError naming the first part that does not exist."""
    node = cfg._cfg_dict
    walked = []
    for part in key.split('.'):
        if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            where = '.'.join(walked) or 'the top level'
            options = list(node) if isinstance(node, dict) else []
            close = difflib.get_close_matches(part, options, n=3)
            hint = f' (did you mean {" or ".join(repr(c) for c in close)}?)' if close else ''
            raise UserError(
                f'--cfg-options key {key!r}: {part!r} does not exist at {where}'
                f'{hint}; to add a new key on purpose write +{key}=...'
            )
        walked.append(part)
    return node


def set_work_dir(cfg: Config, config_path: str, work_dir: str | None) -> None:
    """``--work-dir`` wins, then the config's ``work_dir``, then ``work_dirs/<config name>``."""
    if work_dir:
        cfg.work_dir = work_dir
    elif not cfg.get('work_dir'):
        cfg.work_dir = os.path.join('work_dirs', os.path.splitext(os.path.basename(config_path))[0])


def skip_start_weights(cfg) -> None:
    """Forget the weight files a model starts from (the image tokenizer's, ``pretrained``)
    when a checkpoint of the whole model is loaded anyway: it holds them too."""
    if (cfg.model.get('image_tokenizer') or {}).get('checkpoint'):
        cfg.model.image_tokenizer.checkpoint = None
    if cfg.model.get('pretrained'):
        cfg.model.pretrained = None


#: Config keys that name input files or folders; checked before anything is built.
PATH_KEYS = (
    'data_root',
    'ann_file',
    'ann_files',
    'files',
    'shards',
    'checkpoint',
    'pretrained',
    'vocab_file',
    'vgg16_weights',
)
DATA_DOC = 'docs/data.md'


def check_input_paths(cfg: Config, sections=('model', 'train_dataloader')) -> None:
    """Raise UserError naming the first input path in ``sections`` that does not exist.

    Done before the Runner builds anything, so a config run without its data or weights
    stops with one line that says which path is missing and where to read how to get it.
    Parts the model will not build (a DaVinci whose objectives and head need no image
    tokenizer) are not checked: their files are never read.
    """
    unbuilt = tuple(f'model.{part}.' for part in _unbuilt_model_parts(cfg))
    for section in sections:
        if section in cfg and cfg[section] is not None:
            for where, path in _input_paths(cfg[section], section):
                if unbuilt and where.startswith(unbuilt):
                    continue
                if not os.path.exists(path):
                    raise UserError(
                        f'{where} = {path!r} does not exist; see {DATA_DOC} for '
                        'how to get, convert or point at it'
                    )


def check_tokenizer_weights(cfg: Config) -> None:
    """Refuse to train a model whose frozen image tokenizer would keep random weights.

    The tokenizer is never trained with the model, so it needs its weights from
    ``model.image_tokenizer.checkpoint`` or inside ``model.pretrained`` (or a checkpoint to
    resume or load); without them every image code the model learns from is noise.
    """
    from .models.davinci.model import DaVinci
    from .registry import MODELS

    model = cfg.get('model')
    if not isinstance(model, dict) or not isinstance(model.get('image_tokenizer'), dict):
        return
    model_class = MODELS.find(model['type']) if isinstance(model.get('type'), str) else None
    if not (isinstance(model_class, type) and issubclass(model_class, DaVinci)):
        return  # e.g. a tokenizer trainer: its tokenizer is what it trains
    if 'image_tokenizer' in _unbuilt_model_parts(cfg) or cfg.get('load_from'):
        return
    if model.get('pretrained') or model.image_tokenizer.get('checkpoint'):
        return
    raise UserError(
        'the model builds its frozen image tokenizer without weights '
        '(model.image_tokenizer.checkpoint and model.pretrained are both unset), so it would '
        'learn the codes of a random tokenizer; set model.image_tokenizer.checkpoint=FILE '
        '(tools/export_tokenizer.py writes one from a tokenizer run, e.g. '
        'work_dirs/quickstart/tokenizer/vqgan.safetensors) or model.pretrained=CHECKPOINT'
    )


def _unbuilt_model_parts(cfg: Config) -> list[str]:
    """The configured model parts its class says it will not build (``unbuilt_parts``)."""
    model = cfg.get('model')
    if not isinstance(model, dict) or not isinstance(model.get('type'), str):
        return []
    from .registry import MODELS

    model_class = MODELS.find(model['type'])
    unbuilt = getattr(model_class, 'unbuilt_parts', None)
    return list(unbuilt(model)) if unbuilt else []


def _input_paths(node, where: str):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in PATH_KEYS:
                for path in [value] if isinstance(value, str) else value or []:
                    local = isinstance(path, str) and '://' not in path
                    if local and path and not path.startswith('pipe:'):  # not a pipe: shard
                        yield f'{where}.{key}', path
            else:
                yield from _input_paths(value, f'{where}.{key}')
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _input_paths(value, f'{where}.{index}')
