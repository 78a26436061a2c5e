# Oxford Flowers-102 for linear probes: 102 classes, 1,020 train / 1,020 val / 6,149 test.
# Layout: docs/tasks/linear_probe_data.md (102flowers.tgz, imagelabels.mat and setid.mat in
# data/flowers102).
probe_data = dict(
    name='flowers102',
    num_classes=102,
    # JPEG files -> `img` (H, W, 3) uint8 BGR
    load=[dict(type='LoadImageFromFile', imdecode_backend='pillow')],
    # mmpretrain's Flowers102: setid.mat's trnid, labels from imagelabels.mat
    train=dict(type='Flowers102', data_root='data/flowers102', split='train'),
    val=dict(type='Flowers102', data_root='data/flowers102', split='val'),  # setid.mat's valid
    test=dict(type='Flowers102', data_root='data/flowers102', split='test'),  # setid.mat's tstid
)
