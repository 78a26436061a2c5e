# Pretraining data (docs/original.md section 2.1): image-text pairs (COCO + VG + CC3M-style
# shards) and the C4 text corpus, mixed in every step with a fixed number of samples per source
# (the original: 64 pairs + 64 documents per GPU). Prepare them as docs/data.md says.
data_image_size = 256  # = the model's image_size
counts = dict(pairs=64, text=64)

# The image, resized on its short side and centre-cropped, and the caption, cleaned as the
# original did and tokenised once, in the data workers.
resize_and_crop = [
    dict(
        type='ResizeEdge',
        scale=data_image_size,
        edge='short',
        backend='pillow',
        interpolation='bicubic',
    ),
    dict(type='CenterCrop', crop_size=data_image_size),
]
caption_steps = [
    dict(type='PreCaption', keys=['caption'], max_words=30),
    dict(type='TokenizeText', keys=['caption']),
    dict(type='PackDaVinciInputs'),
]
# Annotation rows name image files; a file that is missing or does not decode is skipped and
# counted as a bad row.
file_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow', ignore_empty=True),
    *resize_and_crop,
    *caption_steps,
]
# Shards and base64 jsonl rows hold the encoded image.
bytes_pipeline = [dict(type='LoadImageFromBytes'), *resize_and_crop, *caption_steps]
# Documents: cleaned like captions, 512 words (the original's C4 branch).
text_pipeline = [
    dict(type='PreCaption', keys=['text'], max_words=512),
    dict(type='TokenizeText', keys=['text']),
    dict(type='PackDaVinciInputs'),
]

train_dataloader = dict(
    batch_size=128,  # = sum(counts)
    num_workers=4,
    sampler=None,  # the sources split themselves over ranks and workers
    dataset=dict(
        type='MultiSourceDataset',
        mode='fixed',
        counts=counts,
        sources=dict(
            pairs=dict(
                type='MultiSourceDataset',
                mode='sample',
                probs=dict(coco=0.25, vg=0.25, cc3m=0.5),
                sources=dict(
                    coco=dict(
                        type='ImageTextAnnotations',
                        data_root='data/coco',
                        ann_file='data/coco/captions_train2017.jsonl',
                        pipeline=file_pipeline,
                    ),
                    vg=dict(
                        type='ImageTextAnnotations',
                        data_root='data/vg',
                        ann_file='data/vg/vg_regions.jsonl',
                        pipeline=file_pipeline,
                    ),
                    cc3m=dict(
                        type='WebDatasetShards',
                        shards='data/cc3m/shards',
                        pipeline=bytes_pipeline,
                        infinite=True,
                    ),
                ),
            ),
            text=dict(type='TextCorpus', files='data/c4/en', pipeline=text_pipeline, infinite=True),
        ),
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate', counts=counts),
)
