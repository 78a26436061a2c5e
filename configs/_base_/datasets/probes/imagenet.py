# ImageNet-1k (ILSVRC 2012) for linear probes: 1000 classes, 1,281,167 train images; the 50,000
# val images are the test split (the official test images have no labels).
# Layout and preparation: docs/tasks/linear_probe_data.md.
probe_data = dict(
    name='imagenet',
    num_classes=1000,
    # JPEG files -> `img` (H, W, 3) uint8 BGR
    load=[dict(type='LoadImageFromFile', imdecode_backend='pillow')],
    # mmpretrain's ImageNet: train/<wnid>/*.JPEG (or meta/train.txt), labels by sorted wnid
    train=dict(type='ImageNet', data_root='data/imagenet', split='train'),
    val=None,  # no labelled split besides val, which is the test split here
    test=dict(type='ImageNet', data_root='data/imagenet', split='val'),  # val/<wnid>/*.JPEG
)
