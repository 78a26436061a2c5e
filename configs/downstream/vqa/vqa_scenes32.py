# VQAv2 on procedural scenes at 32 px, on a CPU: the paper's recipe with the quick start's tiny
# DaVinci and scene questions written in VQAv2's published format (docs/tasks/vqa.md):
#   python -m davinci_zoo_scenes.tasks --out data/scenes_tasks --seed 0 --tasks vqa
#   python tools/dataset_converters/vqa_answer_list.py \
#       data/scenes_tasks/vqa/v2_mscoco_train2014_annotations.json \
#       data/scenes_tasks/vqa/answer_list.json --min-count 1
#   python tools/train.py configs/downstream/vqa/vqa_scenes32.py
#   python tools/test.py configs/downstream/vqa/vqa_scenes32.py work_dirs/vqa_scenes32/epoch_6.pth
# Needs the quick start's checkpoint (python tools/quickstart.py).
_base_ = ['./vqa_base.py']

image_size = 32
data_root = 'data/scenes_tasks/vqa'
answer_list = f'{data_root}/answer_list.json'
model = dict(
    # the quick start's model (configs/davinci_tiny_scenes32.py), so its checkpoint fits
    image_size=image_size,
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
    # the scene questions are short: 40 text positions hold them and their answers
    head=dict(
        answer_list=answer_list,
        max_question_tokens=24,
        max_answer_tokens=8,
        # the decoder reads the question before writing the answer (the original: [CLS]
        # alone), so it looks up what the question names (measured in docs/tasks/vqa.md)
        question_in_decoder=True,
    ),
)

# Scenes are rendered at 32 px: no crop or RandAugment (colours, sizes and places are what
# the questions ask about)
sample_keys = ['answer_weight', 'gt_answer', 'question_id', 'answer_type']
train_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='PreCaption', keys=['question'], max_words=30),
    dict(type='TokenizeText', keys=['question', 'answers']),
    dict(type='PackDaVinciInputs', text_keys=['question', 'answers'], algorithm_keys=sample_keys),
]
test_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='PreCaption', keys=['question'], max_words=50),
    dict(type='TokenizeText', keys=['question']),
    dict(type='PackDaVinciInputs', text_keys=['question'], algorithm_keys=sample_keys),
]
# the scenes load fast: no worker processes competing for the CPU
loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(
    batch_size=32,
    **loader,
    dataset=dict(
        _delete_=True,
        type='VQAv2',
        data_root=data_root,
        subsets=['train2014'],  # no Visual Genome
        pipeline=train_pipeline,
    ),
)
test_dataloader = dict(
    batch_size=100,
    **loader,
    # the generator's val2014 is its test split, with answers: scored here
    dataset=dict(subsets=['val2014'], data_root=data_root, pipeline=test_pipeline),
)
# accuracy, accuracy_yes_no, accuracy_number, accuracy_other (percent) and count
test_evaluator = dict(_delete_=True, type='VQAAccuracy')

# a narrow model on a small set: a higher rate than the paper's 2e-5 and 6 short epochs
# (756 steps; chosen on a held-out generation in docs/tasks/vqa.md), the same shape of
# schedule with one warm-up epoch (the base warms up over 4 of 8)
train_cfg = dict(max_epochs=6)
optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True,
    ),
    dict(
        type='LinearLR',
        start_factor=1.0,
        end_factor=0.0,
        by_epoch=True,
        begin=1,
        convert_to_iter_based=True,
    ),
]
default_hooks = dict(logger=dict(interval=25))
