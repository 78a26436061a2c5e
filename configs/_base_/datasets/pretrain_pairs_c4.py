# Pretraining data (DAVINCI.md 2.1): image-text pairs (COCO + VG + CC3M-style shards) and the
# C4 text corpus, mixed in every step with a fixed number of samples per source (the original:
# 64 pairs + 64 documents per GPU). Prepare them as docs/data.md says.
data_image_size = 256  # = the model's image_size
counts = dict(pairs=64, text=64)

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
                        image_size=data_image_size,
                    ),
                    vg=dict(
                        type='ImageTextAnnotations',
                        data_root='data/vg',
                        ann_file='data/vg/vg_regions.jsonl',
                        image_size=data_image_size,
                    ),
                    cc3m=dict(
                        type='WebDatasetShards',
                        shards='data/cc3m/shards',
                        image_size=data_image_size,
                        infinite=True,
                    ),
                ),
            ),
            text=dict(type='TextCorpus', files='data/c4/en', infinite=True),
        ),
    ),
    collate_fn=dict(type='davinci_zoo.mixed_collate', counts=counts),
)
