# MNIST for linear probes: 10 digits, 60,000 train / 10,000 test grey images of 28 px.
# Layout: docs/tasks/linear_probe_data.md (the four .gz files gunzipped in data/mnist).
probe_data = dict(
    name='mnist',
    num_classes=10,
    # mmpretrain's MNIST gives `img` as (28, 28) grey arrays; repeat the channel to BGR
    load=[dict(type='ToBGR', source='gray')],
    # mmpretrain's MNIST: train-images-idx3-ubyte, train-labels-idx1-ubyte; never downloaded
    train=dict(type='MNIST', data_root='data/mnist', split='train', download=False),
    val=None,  # no official val split
    # MNIST picks its files by test_mode (not split): t10k-images-idx3-ubyte, t10k-labels-...
    test=dict(type='MNIST', data_root='data/mnist', split='test', test_mode=True, download=False),
)
