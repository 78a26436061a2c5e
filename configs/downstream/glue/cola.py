# CoLA (is the sentence grammatical? 8.5k training sentences):
# GLUE fine-tuning of DaVinci base with the original's recipe (_base_/glue_base.py;
# layout and decisions: docs/tasks/glue.md).
#   python tools/train.py configs/downstream/glue/cola.py
#   python tools/test.py configs/downstream/glue/cola.py CHECKPOINT      # dev
# The server's file CoLA.tsv, in work_dirs/glue_submission/:
#   python tools/test.py configs/downstream/glue/cola.py CHECKPOINT \
#       --cfg-options test_dataloader.dataset.split=test test_evaluator.format_only=True
_base_ = ['./_base_/glue_base.py']

task = 'CoLA'
data_root = 'data/glue/CoLA'  # the CoLA folder of glue_data
model = dict(head=dict(num_classes=2))  # 0 unacceptable, 1 acceptable
task_data = dict(task=task, data_root=data_root)
train_dataloader = dict(dataset=task_data)
val_dataloader = dict(dataset=task_data)
test_dataloader = dict(dataset=task_data)
val_evaluator = dict(task=task)
test_evaluator = dict(task=task)

# the metric keys tools/probe_suite.py reports; the first picks the best epoch on dev
suite_metrics = ['glue/mcc']
default_hooks = dict(checkpoint=dict(save_best=suite_metrics[0]))
work_dir = 'work_dirs/glue_cola'
