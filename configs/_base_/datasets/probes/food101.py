# Food-101 for linear probes: 101 classes, 75,750 train / 25,250 test images.
# Layout: docs/tasks/linear_probe_data.md (food-101.tar.gz extracted into data/food101).
probe_data = dict(
    name='food101',
    num_classes=101,
    # JPEG files -> `img` (H, W, 3) uint8 BGR
    load=[dict(type='LoadImageFromFile', imdecode_backend='pillow')],
    # mmpretrain's Food101: images/<class>/<id>.jpg listed in meta/train.txt
    train=dict(type='Food101', data_root='data/food101/food-101', split='train'),
    val=None,  # no official val split
    test=dict(type='Food101', data_root='data/food101/food-101', split='test'),  # meta/test.txt
)
