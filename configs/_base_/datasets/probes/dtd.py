# Describable Textures (DTD) for linear probes: 47 classes, split 1: 1,880 train / 1,880 val /
# 1,880 test images. Layout: docs/tasks/linear_probe_data.md (dtd-r1.0.1.tar.gz extracted into
# data/dtd).
probe_data = dict(
    name='dtd',
    num_classes=47,
    # JPEG files -> `img` (H, W, 3) uint8 BGR
    load=[dict(type='LoadImageFromFile', imdecode_backend='pillow')],
    # mmpretrain's DTD: imdb/imdb.mat, images whose set is 1 (split 1's train1.txt)
    train=dict(type='DTD', data_root='data/dtd/dtd', split='train'),
    val=dict(type='DTD', data_root='data/dtd/dtd', split='val'),  # set 2: split 1's val1.txt
    test=dict(type='DTD', data_root='data/dtd/dtd', split='test'),  # set 3: split 1's test1.txt
)
