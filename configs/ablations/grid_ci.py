# The CI version of the objective ablation (tests/test_ablation.py): 2 mixes x 2 data scales, a
# few pretraining steps, then writing and painting on a few scenes. The other stages of
# grid_scenes32.py (held-out losses, VQA, probe) are left out: each is one or two more tool
# starts (~5 s each) per cell, which the CI's 2 minutes do not hold. Run it in a folder holding
# a tokenizer at the path the mixes read (work_dirs/quickstart/tokenizer/vqgan.safetensors):
#   python tools/ablate.py configs/ablations/grid_ci.py --out work_dirs/ablations_ci
# Config paths are relative to this file.

mixes = dict(plm='plm.py', pim='pim.py')  # one mix that writes, one that paints
scales = {'16': 16, '32': 32}  # name -> scenes pretrained on (nested seeded subsets)
scale_key = 'train_dataloader.dataset.size'  # the cfg-option a scale sets in the mix config
steps = 8  # pretraining steps of every cell
pretrain = dict(
    options={  # cfg-options of every pretraining run
        'train_cfg.max_iters': steps,
        'param_scheduler.0.end': 2,  # warm-up steps
        'param_scheduler.1.begin': 2,
        'param_scheduler.1.end': steps,
        'default_hooks.checkpoint.interval': 4,  # a killed cell resumes from step 4
        'default_hooks.logger.interval': 2,
        'train_dataloader.batch_size': 4,
        'train_dataloader.dataset.dataset.num_scenes': 200,  # the pool the scales come from
    }
)
evaluation = dict(  # the stages after pretraining, in this order
    # caption and paint accuracy (analyser) on 8 held-out scenes
    write_paint=dict(
        options={'test_dataloader.dataset.num_scenes': 8, 'test_dataloader.batch_size': 8},
        metrics=dict(  # results column -> (key of the test's metrics, ability it needs)
            caption_accuracy=('scenes/caption_accuracy_all', 'write'),
            paint_accuracy=('scenes/paint_accuracy_all', 'paint'),
        ),
    ),
)
