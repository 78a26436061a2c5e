# STS-B (how similar are two sentences, 0-5? 5.7k training pairs):
# GLUE fine-tuning of DaVinci base with the original's recipe (_base_/glue_base.py;
# layout and decisions: docs/tasks/glue.md).
#   python tools/train.py configs/downstream/glue/stsb.py
#   python tools/test.py configs/downstream/glue/stsb.py CHECKPOINT      # dev
# The server's file STS-B.tsv, in work_dirs/glue_submission/:
#   python tools/test.py configs/downstream/glue/stsb.py CHECKPOINT \
#       --cfg-options test_dataloader.dataset.split=test test_evaluator.format_only=True
_base_ = ['./_base_/glue_base.py']

task = 'STS-B'
data_root = 'data/glue/STS-B'  # the STS-B folder of glue_data
model = dict(
    # the decoder's [SEP] state -> D -> ReLU -> 1: the score, mean squared error
    head=dict(_delete_=True, type='SequenceRegressionHead', max_tokens=128),
)
task_data = dict(task=task, data_root=data_root)
train_dataloader = dict(dataset=task_data)
val_dataloader = dict(dataset=task_data)
test_dataloader = dict(dataset=task_data)
val_evaluator = dict(task=task)
test_evaluator = dict(task=task)

# the metric keys tools/probe_suite.py reports; the first picks the best epoch on dev
suite_metrics = ['glue/pearson', 'glue/spearman']
default_hooks = dict(checkpoint=dict(save_best=suite_metrics[0]))
work_dir = 'work_dirs/glue_stsb'
