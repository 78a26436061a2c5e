# STL-10 for linear probes: 10 classes, 5,000 train / 8,000 test images of 96 px (the unlabeled
# split is not used). Layout: docs/tasks/linear_probe_data.md (stl10_binary.tar.gz extracted
# into data/stl10).
probe_data = dict(
    name='stl10',
    num_classes=10,
    load=[],  # STL10 gives `img` as (96, 96, 3) BGR arrays already
    # the zoo's STL10: stl10_binary/train_X.bin, train_y.bin, class_names.txt
    train=dict(type='STL10', data_root='data/stl10', split='train'),
    val=None,  # no official val split (the ten folds are subsets of train)
    test=dict(type='STL10', data_root='data/stl10', split='test'),  # test_X.bin, test_y.bin
)
