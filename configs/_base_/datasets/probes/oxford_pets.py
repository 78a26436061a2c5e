# Oxford-IIIT Pets for linear probes: 37 breeds, 3,680 trainval / 3,669 test images.
# Layout: docs/tasks/linear_probe_data.md (images.tar.gz and annotations.tar.gz extracted into
# data/oxford_pets).
probe_data = dict(
    name='oxford_pets',
    num_classes=37,
    # JPEG files -> `img` (H, W, 3) uint8 BGR
    load=[dict(type='LoadImageFromFile', imdecode_backend='pillow')],
    # mmpretrain's OxfordIIITPet: annotations/trainval.txt (the only training split)
    train=dict(type='OxfordIIITPet', data_root='data/oxford_pets', split='trainval'),
    val=None,  # no official val split
    test=dict(type='OxfordIIITPet', data_root='data/oxford_pets', split='test'),
)
