# NLVR2 on procedural scenes at 32 px, on a CPU: the paper's recipe with the quick start's tiny
# DaVinci and scene pairs written in NLVR2's published format (docs/tasks/nlvr2.md):
#   python tools/train.py configs/downstream/nlvr2/nlvr2_scenes32.py
#   python tools/test.py configs/downstream/nlvr2/nlvr2_scenes32.py \
#       work_dirs/nlvr2_scenes32/epoch_4.pth
# Needs the quick start's checkpoint (python tools/quickstart.py) and the scene data under
# data/scenes_tasks/nlvr2 (written by the davinci-zoo-scenes plugin's generator).
_base_ = ['./nlvr2_base.py']

image_size = 32
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
    # the encoder reads each image with the sentence, the decoder [CLS] alone (the original:
    # an empty text, then the sentence; why in docs/tasks/nlvr2.md)
    head=dict(text_in_encoder=True, text_in_decoder=False),
    # the word embeddings do not train (faster steps; measured in docs/tasks/nlvr2.md)
    frozen_parts=['encoder.embeddings.word_embeddings'],
)

data_root = 'data/scenes_tasks/nlvr2'
# Scenes are rendered at 32 px: no crop or RandAugment (colours, sizes and places are what
# the sentences are about); Resize only guards against other sizes.
image_steps = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(
        type='Resize',
        scale=(image_size, image_size),
        keep_ratio=False,
        backend='pillow',
        interpolation='bicubic',
    ),
]
pipeline = [
    dict(
        type='TransformBroadcaster',
        mapping=dict(img_path='img_path'),
        remapping=dict(
            img='img', img_path='img_path', img_shape='img_shape', ori_shape='ori_shape'
        ),
        transforms=image_steps,
    ),
    dict(type='PreCaption', keys=['text'], max_words=30),
    dict(type='TokenizeText', keys=['text']),
    dict(type='PackDaVinciInputs', text_keys=['text']),
]
# the scenes load fast: no worker processes competing for the CPU
loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(
    batch_size=16,
    **loader,
    dataset=dict(
        ann_file=f'{data_root}/train.json',
        data_root=f'{data_root}/images/train',
        pipeline=pipeline,
    ),
)
val_dataloader = dict(
    batch_size=50,
    **loader,
    dataset=dict(ann_file=f'{data_root}/dev.json', data_root=f'{data_root}/dev', pipeline=pipeline),
)
test_dataloader = dict(
    batch_size=50,
    **loader,
    dataset=dict(
        ann_file=f'{data_root}/test1.json', data_root=f'{data_root}/test1', pipeline=pipeline
    ),
)

# a narrow model on a small set: a higher rate than the paper's 2e-5, the same shape of
# schedule (warm-up over the first epoch, linear decay to 0 at the last); 4 epochs suffice
# from the quick start's ITC + ITM pretraining (6 were needed without them)
train_cfg = dict(max_epochs=4)
optim_wrapper = dict(optimizer=dict(lr=1e-4))
default_hooks = dict(logger=dict(interval=25))
