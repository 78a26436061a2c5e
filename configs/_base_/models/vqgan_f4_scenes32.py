# The tiny scene tokenizer, shared by its training config and the DaVinci that paints with it
# (one definition, so the weights always fit): 32 px -> 8x8 codes from 1024 entries.
image_tokenizer = dict(
    type='VQGAN',
    ch=16,
    ch_mult=(1, 2, 4),
    num_res_blocks=1,
    attn_resolutions=(),
    z_channels=32,
    embed_dim=32,
    codebook_size=1024,
    resolution=32,
    norm_groups=8,
    cell_local_encoder=True,  # each code sees only its 4x4 cell: the background is one code
    codebook_update='ema',
    restart_interval=50,
    dead_code_threshold=0.02,  # object codes are rare: dead only when unused for many batches
    checkpoint=None,  # the quick start sets the trained weights
)
