# A small VQGAN for 32 px images of any kind: 8x8 codes (one per 4x4-pixel cell) from 1024
# entries, ~0.75M parameters. One definition, shared by the config that trains it
# (ImageTokenizerTrainer) and the DaVinci that paints with it, so the exported weights always
# fit: both models take it as `image_tokenizer`, and a child config's `model` merges into it.
model = dict(
    image_tokenizer=dict(
        type='VQGAN',
        ch=16,  # channels at full resolution (x2, x4 after each halving)
        ch_mult=(1, 2, 4),  # three levels, two halvings: 32 px -> 8x8 codes
        num_res_blocks=1,  # residual blocks per level
        attn_resolutions=(),  # no attention blocks (cheap on a CPU)
        z_channels=32,  # width of the encoder's output
        embed_dim=32,  # width of a code vector
        codebook_size=1024,  # codes = DaVinci's visual vocabulary (its visual_vocab_size)
        resolution=32,  # image side in pixels
        norm_groups=8,  # GroupNorm groups (must divide every level's channels)
        codebook_update='ema',  # codes move to the running mean of the vectors they are given
        restart_interval=50,  # every 50 steps, dead codes restart where reconstruction is worst
        # A code used fewer than ~0.02 times per batch (once in 50 batches) counts as dead: with
        # 8 images x 64 cells per batch and 1024 codes, a live code is used ~0.5 times per batch.
        dead_code_threshold=0.02,
        checkpoint=None,  # the exported weights (tools/export_tokenizer.py); DaVinci configs set it
    )
)
