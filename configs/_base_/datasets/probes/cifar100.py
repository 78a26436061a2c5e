# CIFAR-100 for linear probes: 100 (fine) classes, 50,000 train / 10,000 test images of 32 px.
# Layout: docs/tasks/linear_probe_data.md (cifar-100-python.tar.gz extracted into data/cifar100).
probe_data = dict(
    name='cifar100',
    num_classes=100,
    # mmpretrain's CIFAR100 gives `img` as RGB arrays; flip them to BGR
    load=[dict(type='ToBGR', source='rgb')],
    # mmpretrain's CIFAR100: cifar-100-python/train, fine labels, md5 sums of the release
    # checked, never downloaded
    train=dict(type='CIFAR100', data_root='data/cifar100', split='train', download=False),
    val=None,  # no official val split
    test=dict(type='CIFAR100', data_root='data/cifar100', split='test', download=False),
)
