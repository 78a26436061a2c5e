# The objective ablation on the scenes (docs/ablations.md): 6 objective mixes x 3 data scales,
# every cell pretrained for the same steps (steps_per_cell in _base_/pretrain_scenes32.py), then
# the same fixed evaluation.
#   python tools/ablate.py configs/ablations/grid_scenes32.py --out work_dirs/ablations
# Config paths are relative to this file; data paths (requires) to the folder the tool runs in.

# Fine-tuning epochs of the VQA stage (the task's own recipe trains 8; the same for every cell)
vqa_epochs = 2

mixes = dict(  # name -> mix config (each inherits _base_/pretrain_scenes32.py)
    plm_pim='plm_pim.py',  # prefix LM + prefix image modelling (the quick start's pair)
    plm='plm.py',  # prefix LM only
    pim='pim.py',  # prefix image modelling only
    mlm_itm_itc='mlm_itm_itc.py',  # masked LM + image-text matching + contrastive
    captioning='captioning.py',  # plain captioning
    captioning_mim='captioning_mim.py',  # captioning + masked image modelling
)
# name -> scenes pretrained on: nested seeded subsets of one pool (SubsetDataset)
scales = {'500': 500, '2000': 2000, '8000': 8000}
scale_key = 'train_dataloader.dataset.size'  # the cfg-option a scale sets in the mix config
pretrain = dict(options={})  # more cfg-options of every pretraining run (the mixes are the recipe)

probe_task = 'probe_scenes_shapes'
evaluation = dict(  # the stages after pretraining, in this order
    # caption and paint accuracy (analyser) on the 200 held-out scenes of the mix config
    write_paint=dict(
        options={},  # more cfg-options of tools/test.py
        metrics=dict(  # results column -> (key of the test's metrics, ability it needs)
            caption_accuracy=('scenes/caption_accuracy_all', 'write'),
            paint_accuracy=('scenes/paint_accuracy_all', 'paint'),
        ),
    ),
    # each objective's loss on the same held-out scenes (fixed seed): heldout/loss_<name>
    heldout=dict(options={}, seed=0),
    # scene VQA: fine-tune the pretrained checkpoint for vqa_epochs, then score it
    vqa=dict(
        config='../downstream/vqa/vqa_scenes32.py',
        epochs=vqa_epochs,
        options={
            'default_hooks.checkpoint.max_keep_ckpts': 1,  # keep one checkpoint a cell
            # the rate the grid was measured with (docs/ablations.md); the task recipe's 5e-4
            # is tuned for its own 8 epochs
            'optim_wrapper.optimizer.lr': 2e-4,
        },
        metrics=dict(vqa_accuracy='vqa/accuracy'),  # percent
        requires=dict(
            path='data/scenes_tasks/vqa/answer_list.json',
            make='python -m davinci_zoo_scenes.tasks --out data/scenes_tasks --seed 0 '
            '--tasks vqa && python tools/dataset_converters/vqa_answer_list.py '
            'data/scenes_tasks/vqa/v2_mscoco_train2014_annotations.json '
            'data/scenes_tasks/vqa/answer_list.json --min-count 1',
        ),
    ),
    # linear probe (frozen features) on the scene shape-relation classes
    probe=dict(
        task=probe_task,
        configs='../downstream',  # the folder holding linear_probe/
        metrics=dict(probe_accuracy=f'{probe_task}/accuracy'),  # percent
        requires=dict(
            path='data/scenes_tasks/classification/cifar-10-batches-py',
            make='python -m davinci_zoo_scenes.tasks --out data/scenes_tasks --seed 0 '
            '--tasks classification',
        ),
    ),
)
