# The linear-probe recipe every probe config shares (docs/tasks/linear_probe.md). A probe config
# inherits this and one dataset file (configs/_base_/datasets/probes/<name>.py: probe_data);
# tools/probe_suite.py reads `probe` and `probe_data`:
#   python tools/probe_suite.py CHECKPOINT --tasks probe_cifar10 --out work_dirs/probes
probe = dict(
    # 'bn_linear': the original's BatchNorm + Linear head with AdamW (docs/original.md 4.6);
    # 'logistic': the CLIP paper's L-BFGS logistic regression (tools/probe_suite.py --classifier)
    classifier='bn_linear',
    batch_size=64,  # images per batch while extracting features
    num_workers=0,  # dataloader worker processes while extracting features
    bn_linear=dict(
        epochs=100,  # the original's 100 epochs over the training features
        warmup_epochs=10,  # linear warm-up, as the original's 10 of 100
        batch_size=256,  # the original's batch
        lr=6e-4,  # the original's config (its README says 1e-4)
        weight_decay=0.01,  # AdamW's, as the original
        schedule='linear',  # decay to 0 after the warm-up: 'linear' (the original's) or 'cosine'
        # the BatchNorm's fixed statistics: 'train' = the training features' mean and variance;
        # 'identity' = (0, 1), the original's never-updated running statistics
        bn_statistics='train',
        seed=0,  # initialisation and shuffling
    ),
    logistic=dict(
        # L2 strengths (mean cross-entropy + l2/2 |W|^2) tried on the validation split
        l2_grid=(1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0),
        refine=True,  # also try the half-decade neighbours of the best strength
        # strongest first; stop after this many strengths in a row below the best (None: all)
        patience=2,
        max_iter=1000,  # L-BFGS iterations per fit, as the CLIP paper's
        val_fraction=0.2,  # share of train held out (seeded) when the dataset has no val split
        seed=0,  # the hold-out's seed
    ),
    pixels_max_side=32,  # the pixel baseline averages images down to at most this side
    # the tokenizer baseline averages its grid of code vectors down to at most this side
    tokenizer_max_grid=8,
)
