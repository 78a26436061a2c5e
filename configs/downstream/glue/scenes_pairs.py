# The scene sentence-pair task on a CPU: two scene captions, paraphrases of one scene or
# captions of minimally different scenes, in MRPC's layout (docs/tasks/glue.md). The quick
# start's tiny DaVinci reads the pair as text only, as GLUE:
#   python -m davinci_zoo_scenes.tasks --out data/scenes_tasks --seed 0 --tasks pairs
#   python tools/train.py configs/downstream/glue/scenes_pairs.py
#   python tools/test.py configs/downstream/glue/scenes_pairs.py \
#       work_dirs/glue_scenes_pairs/best_glue_accuracy_epoch_N.pth
# Needs the quick start's checkpoint (python tools/quickstart.py).
_base_ = ['./mrpc.py']

max_tokens = 40  # the tiny model's text positions; two scene captions fit
model = dict(
    # the quick start's model (configs/davinci_tiny_scenes32.py), so its checkpoint fits
    image_size=32,
    hidden_size=256,
    num_heads=4,
    intermediate_size=1024,
    encoder_layers=3,
    decoder_layers=3,
    dropout=0.0,
    max_text_positions=40,
    visual_vocab_size=1024,  # the scene tokenizer's codebook (the tokenizer is not built)
    image_code_grid=(8, 8),
    initializer_range=0.04,
    image_embedder=dict(
        _delete_=True,
        type='ResNetImageEmbedder',
        stage_blocks=(1, 1, 1),
        base_planes=16,
        stem_channels=32,
        stem_pool=False,
        stem_stride=2,
    ),
    image_tokenizer=None,  # nothing reads image codes; the checkpoint's tokenizer is dropped
    image_grid_embeddings=True,  # painting parts of the quick start's model: its keys
    painting_relative_bias=True,
    pretrained='work_dirs/quickstart/davinci/iter_700.pth',
    head=dict(max_tokens=max_tokens),
)

data_root = 'data/scenes_tasks/pairs'  # train.tsv, dev.tsv, test.tsv in MRPC's layout
text_pipeline = [
    dict(type='TokenizeTextPair', keys=['text', 'text_pair'], max_tokens=max_tokens),
    dict(
        type='PackDaVinciInputs',
        text_keys=['text'],
        meta_keys=['sample_idx', 'glue_index', 'glue_subset'],
    ),
]
task_data = dict(data_root=data_root, pipeline=text_pipeline)
# short texts load fast: no worker processes competing for the CPU
loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(batch_size=32, **loader, dataset=task_data)
val_dataloader = dict(batch_size=100, **loader, dataset=task_data)
test_dataloader = dict(batch_size=100, **loader, dataset=task_data)
# the server-format file of the test split goes beside the run, not into GLUE's folder
test_evaluator = dict(out_dir='work_dirs/glue_scenes_pairs/submission')

# a narrow model on a small set: a higher rate than the paper's 2e-5, the same schedule
train_cfg = dict(max_epochs=3)
optim_wrapper = dict(optimizer=dict(lr=1e-4))
default_hooks = dict(logger=dict(interval=20))
work_dir = 'work_dirs/glue_scenes_pairs'
