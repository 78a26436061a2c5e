# VQAv2 fine-tuning of DaVinci base: the paper's recipe (docs/original.md section 4.1).
#   bash tools/dist_train.sh configs/downstream/vqa/vqa_base.py 8
#   python tools/test.py configs/downstream/vqa/vqa_base.py work_dirs/vqa_base/epoch_8.pth
# Trains on VQAv2 train + val and Visual Genome QA; the test writes test-dev answers in the
# evaluation server's format. Data layout, the answer list and every decision: docs/tasks/vqa.md.
_base_ = [
    '../../_base_/finetune_runtime.py',
    '../../_base_/models/davinci_base.py',
    '../../_base_/schedules/finetune_adamw_linear.py',
]

image_size = 480  # the original's VQA resolution: 30x30 + 1 image tokens
data_root = 'data/vqa'
# the candidate answers: tools/dataset_converters/vqa_answer_list.py on train + val
answer_list = f'{data_root}/answer_list.json'
model = dict(
    image_size=image_size,  # the 256 px pretraining position tables are resized on load
    # the pretraining run of configs/davinci_base.py (its last checkpoint)
    pretrained='work_dirs/davinci_base/iter_104000.pth',
    objectives=[],  # fine-tuning: the head's loss only (no image tokenizer is built)
    # the decoder writes the answer; test: the 128 candidates likeliest by their first token,
    # re-ranked by their whole likelihood
    head=dict(type='VQAHead', answer_list=answer_list, top_k=128),
)

# the answer fields the head and the metric read from the data samples
sample_keys = ['answer_weight', 'gt_answer', 'question_id', 'answer_type']
train_pipeline = [
    # a missing image raises: the dataset counts the row as bad
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    # the original's RandomResizedCrop(scale 0.5-1, bicubic); no horizontal flip (see docs)
    dict(
        type='RandomResizedCrop',
        scale=image_size,
        crop_ratio_range=(0.5, 1.0),
        backend='pillow',
        interpolation='bicubic',
    ),
    # the original's RandAugment: 2 of these per image at magnitude 7 of 10 (mmpretrain's
    # magnitude scales; the original's Identity is left out)
    dict(
        type='RandAugment',
        policies=[
            dict(type='AutoContrast'),
            dict(type='Equalize'),
            dict(type='Brightness', magnitude_range=(0, 0.9)),
            dict(type='Sharpness', magnitude_range=(0, 0.9)),
            dict(type='Shear', magnitude_range=(0, 0.3), direction='horizontal'),
            dict(type='Shear', magnitude_range=(0, 0.3), direction='vertical'),
            dict(type='Translate', magnitude_range=(0, 0.45), direction='horizontal'),
            dict(type='Translate', magnitude_range=(0, 0.45), direction='vertical'),
            dict(type='Rotate', magnitude_range=(0, 30)),
        ],
        num_policies=2,
        magnitude_level=7,
        total_level=10,
    ),
    dict(type='PreCaption', keys=['question'], max_words=30),  # the original's pre_question
    dict(type='TokenizeText', keys=['question', 'answers']),
    # answers: the question's distinct answers, one TextBatch row each (owner = question)
    dict(type='PackDaVinciInputs', text_keys=['question', 'answers'], algorithm_keys=sample_keys),
]
test_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    # the original's test transform: both sides to the resolution (no crop)
    dict(
        type='Resize',
        scale=(image_size, image_size),
        keep_ratio=False,
        backend='pillow',
        interpolation='bicubic',
    ),
    dict(type='PreCaption', keys=['question'], max_words=50),  # test questions: 50 words
    dict(type='TokenizeText', keys=['question']),
    dict(type='PackDaVinciInputs', text_keys=['question'], algorithm_keys=sample_keys),
]

train_dataloader = dict(
    batch_size=24,  # per GPU (the original: 24 on each of 8 GPUs)
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='VQAv2',
        data_root=data_root,
        subsets=['train2014', 'val2014'],  # the original trained on both
        # Visual Genome's official QA file; its images under data/vg/VG_100K{,_2}/
        vg_file='data/vg/question_answers.json',
        vg_answer_weight=0.5,  # the original's weight of a VG answer
        pipeline=train_pipeline,
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
test_dataloader = dict(
    batch_size=24,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='VQAv2', data_root=data_root, subsets=['test-dev2015'], pipeline=test_pipeline
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate'),
)
# test-dev has no answers: write the server's results file ([{question_id, answer}])
test_evaluator = dict(
    type='VQAAccuracy',
    format_only=True,
    outfile='work_dirs/vqa_base/vqa_test-dev2015_results.json',
)
test_cfg = dict(type='TestLoop')

# 8 epochs, no validation (val2014 is training data, as in the original)
train_cfg = dict(max_epochs=8)
# per step: linear warm-up over the first 4 epochs (the original's warmup_epochs: 4), then
# linear decay to 0
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=4,
        convert_to_iter_based=True,
    ),
    dict(
        type='LinearLR',
        start_factor=1.0,
        end_factor=0.0,
        by_epoch=True,
        begin=4,
        convert_to_iter_based=True,
    ),
]
