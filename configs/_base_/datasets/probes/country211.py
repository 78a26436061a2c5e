# Country211 (OpenAI) for linear probes: 211 countries, 31,650 train / 10,550 valid / 21,100 test
# images. Layout: docs/tasks/linear_probe_data.md (country211.tgz extracted into data/country211).
probe_data = dict(
    name='country211',
    num_classes=211,
    # JPEG files -> `img` (H, W, 3) uint8 BGR
    load=[dict(type='LoadImageFromFile', imdecode_backend='pillow')],
    # the zoo's Country211: country211/train/<ISO code>/*.jpg, labels by sorted code
    train=dict(type='Country211', data_root='data/country211', split='train'),
    val=dict(type='Country211', data_root='data/country211', split='valid'),  # the valid split
    test=dict(type='Country211', data_root='data/country211', split='test'),
)
