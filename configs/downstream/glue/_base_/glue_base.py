# GLUE fine-tuning of DaVinci base, the original's recipe (docs/original.md section 4.5): what the
# eight task configs of configs/downstream/glue/ share. Text only: the encoder reads
# [CLS] a [SEP] b [SEP], the decoder reads the same text, its [SEP] state -> MLP -> labels.
# A task config sets `task`, `data_root`, the head's outputs and `suite_metrics`; layout,
# commands and decisions: docs/tasks/glue.md.
_base_ = [
    '../../../_base_/finetune_runtime.py',
    '../../../_base_/models/davinci_base.py',
    '../../../_base_/schedules/finetune_adamw_linear.py',
]

max_tokens = 128  # the original's max_length, [CLS] and both [SEP] included
model = dict(
    # the pretraining run of configs/davinci_base.py (its last checkpoint)
    pretrained='work_dirs/davinci_base/iter_104000.pth',
    objectives=[],  # fine-tuning: the head's loss only (no image tokenizer is built)
    # decoder state at the last [SEP] -> D -> ReLU -> classes (a task sets num_classes)
    head=dict(type='SequenceClassificationHead', num_classes=2, max_tokens=max_tokens),
)

# [CLS] a [SEP] b [SEP] (one text for CoLA and SST-2), cut longest-first to max_tokens
text_pipeline = [
    dict(type='TokenizeTextPair', keys=['text', 'text_pair'], max_tokens=max_tokens),
    dict(
        type='PackDaVinciInputs',
        text_keys=['text'],
        algorithm_keys=['gt_value'],  # STS-B's score (the other tasks have gt_label)
        meta_keys=['sample_idx', 'glue_index', 'glue_subset'],  # the server file's index
    ),
]
# The share of rows a run may skip (a wrong column count, a label outside the task's).
max_bad_fraction = 0.01
glue_dataset = dict(type='GLUEDataset', pipeline=text_pipeline, max_bad_fraction=max_bad_fraction)
train_dataloader = dict(
    batch_size=32,  # the original's batch (on one GPU; per GPU with tools/dist_train.sh)
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(glue_dataset, split='train'),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(glue_dataset, split='dev'),  # GLUE's test labels are hidden: score dev
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
test_dataloader = val_dataloader
# the task's standard metric(s) in percent; with format_only=True (and the test split) the
# GLUE server's file <TASK>.tsv in out_dir instead
val_evaluator = dict(type='GLUEMetric', format_only=False, out_dir='work_dirs/glue_submission')
test_evaluator = val_evaluator

# 8 epochs, dev after each
train_cfg = dict(max_epochs=8, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# AdamW lr 2e-5, no weight decay (Hugging Face's run_glue default; none on biases and norms
# in any case)
optim_wrapper = dict(optimizer=dict(lr=2e-5, weight_decay=0.0))
# per step: linear warm-up over the first 50 steps, and linear decay to 0 at the last step
# over the whole run (the two factors multiply; docs/tasks/glue.md)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=50),
    dict(
        type='LinearLR',
        start_factor=1.0,
        end_factor=0.0,
        by_epoch=True,
        begin=0,
        convert_to_iter_based=True,
    ),
]
default_hooks = dict(
    logger=dict(interval=50),
    # every epoch, keeping the last one and the best on dev (a task names its metric)
    checkpoint=dict(max_keep_ckpts=1, rule='greater'),
)
