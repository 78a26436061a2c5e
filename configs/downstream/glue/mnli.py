# MNLI (does a premise entail a hypothesis? 393k training pairs):
# GLUE fine-tuning of DaVinci base with the original's recipe (_base_/glue_base.py;
# layout and decisions: docs/tasks/glue.md).
#   python tools/train.py configs/downstream/glue/mnli.py
#   python tools/test.py configs/downstream/glue/mnli.py CHECKPOINT      # dev matched + mismatched
# The server's files MNLI-m.tsv and MNLI-mm.tsv (split=diagnostic: AX.tsv), in
# work_dirs/glue_submission/:
#   python tools/test.py configs/downstream/glue/mnli.py CHECKPOINT \
#       --cfg-options test_dataloader.dataset.split=test test_evaluator.format_only=True
_base_ = ['./_base_/glue_base.py']

task = 'MNLI'
data_root = 'data/glue/MNLI'  # the MNLI folder of glue_data
model = dict(head=dict(num_classes=3))  # 0 entailment, 1 neutral, 2 contradiction
task_data = dict(task=task, data_root=data_root)
train_dataloader = dict(dataset=task_data)
val_dataloader = dict(dataset=task_data)
test_dataloader = dict(dataset=task_data)
val_evaluator = dict(task=task)
test_evaluator = dict(task=task)

# the metric keys tools/probe_suite.py reports; the first picks the best epoch on dev
suite_metrics = ['glue/accuracy_m', 'glue/accuracy_mm']
default_hooks = dict(checkpoint=dict(save_best=suite_metrics[0]))
work_dir = 'work_dirs/glue_mnli'
