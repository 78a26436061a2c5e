# FGVC Aircraft (2013b) for linear probes: 100 variants, 3,334 train / 3,333 val / 3,333 test.
# Layout: docs/tasks/linear_probe_data.md (fgvc-aircraft-2013b.tar.gz extracted into
# data/fgvc_aircraft).
probe_data = dict(
    name='fgvc_aircraft',
    num_classes=100,
    # JPEG files -> `img` (H, W, 3) uint8 BGR (the 20 px copyright banner is kept)
    load=[dict(type='LoadImageFromFile', imdecode_backend='pillow')],
    # mmpretrain's FGVCAircraft: data/images_variant_train.txt, variant names as classes
    train=dict(
        type='FGVCAircraft', data_root='data/fgvc_aircraft/fgvc-aircraft-2013b', split='train'
    ),
    # the official val split (data/images_variant_val.txt)
    val=dict(type='FGVCAircraft', data_root='data/fgvc_aircraft/fgvc-aircraft-2013b', split='val'),
    test=dict(
        type='FGVCAircraft', data_root='data/fgvc_aircraft/fgvc-aircraft-2013b', split='test'
    ),
)
