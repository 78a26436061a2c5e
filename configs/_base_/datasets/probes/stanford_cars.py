# Stanford Cars for linear probes: 196 classes, 8,144 train / 8,041 test images.
# Layout (either of the two published ones): docs/tasks/linear_probe_data.md.
probe_data = dict(
    name='stanford_cars',
    num_classes=196,
    # JPEG files -> `img` (H, W, 3) uint8 BGR
    load=[dict(type='LoadImageFromFile', imdecode_backend='pillow')],
    # mmpretrain's StanfordCars: cars_annos.mat + car_ims/, or devkit/ + cars_train/
    train=dict(type='StanfordCars', data_root='data/stanford_cars', split='train'),
    val=None,  # no official val split
    # cars_annos.mat's test flag, or devkit/cars_test_annos_withlabels.mat + cars_test/
    test=dict(type='StanfordCars', data_root='data/stanford_cars', split='test'),
)
