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
    # Each code sees only its own 4x4 cell, so the plain background is one code (with taming's
    # encoder it spread over hundreds of codes that depended on the rest of the image).
    cell_local_encoder=True,
    codebook_update='ema',
    restart_interval=50,
    # Objects cover a quarter of the cells, so their codes are rare: only codes unused for
    # many batches count as dead (a threshold near 1 per batch would keep restarting them).
    dead_code_threshold=0.02,
    checkpoint=None,  # the quick start sets the trained weights
)
