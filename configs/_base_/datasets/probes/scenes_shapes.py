# The scene classification set for linear probes on this CPU: 18 classes (two shapes and their
# relation, e.g. circle_above_square; colours and sizes random), 5,000 train / 1,000 test images
# of 32 px at scale 1, written by
#   python -m davinci_zoo_scenes.tasks --out data/scenes_tasks --seed 0 --tasks classification
# (plugins/scenes/README.md). Read from its CIFAR-10-layout copy.
probe_data = dict(
    name='scenes_shapes',
    num_classes=18,
    load=[],  # CIFARLayout gives `img` as (32, 32, 3) BGR arrays already
    # the zoo's CIFARLayout: data_batch_1..5, class names from batches.meta, no md5 sums
    train=dict(
        type='CIFARLayout',
        data_root='data/scenes_tasks/classification/cifar-10-batches-py',
        split='train',
    ),
    val=None,  # no val split
    test=dict(
        type='CIFARLayout',
        data_root='data/scenes_tasks/classification/cifar-10-batches-py',
        split='test',
    ),
)
