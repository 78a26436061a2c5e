# CIFAR-10 for linear probes: 10 classes, 50,000 train / 10,000 test images of 32 px.
# Layout: docs/tasks/linear_probe_data.md (cifar-10-python.tar.gz extracted into data/cifar10).
probe_data = dict(
    name='cifar10',
    num_classes=10,
    # mmpretrain's CIFAR10 gives `img` as RGB arrays; flip them to BGR
    load=[dict(type='ToBGR', source='rgb')],
    # mmpretrain's CIFAR10: cifar-10-batches-py/data_batch_1..5, md5 sums of the release checked,
    # never downloaded
    train=dict(type='CIFAR10', data_root='data/cifar10', split='train', download=False),
    val=None,  # no official val split
    test=dict(type='CIFAR10', data_root='data/cifar10', split='test', download=False),
)
