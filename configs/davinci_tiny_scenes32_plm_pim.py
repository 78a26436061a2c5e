# The quick start's tiny DaVinci pretrained to write and paint only (PrefixLM + PrefixImage),
# without its image-text contrast and matching: the quick start's recipe before those were
# added: cheaper steps, weaker NLVR2 and VQA scene results (docs/experiments/quickstart.md).
#   python tools/train.py configs/davinci_tiny_scenes32_plm_pim.py \
#       --work-dir work_dirs/davinci_plm_pim --cfg-options \
#       model.image_tokenizer.checkpoint=work_dirs/quickstart/tokenizer/vqgan.safetensors
_base_ = ['./davinci_tiny_scenes32.py']

model = dict(
    objectives=[
        # the quick start's first two objectives, unchanged
        dict(type='PrefixLM', weight=1.0, empty_prefix_prob=0.8),
        dict(type='PrefixImage', weight=1.0, mode='static', input_noise=0.15),
    ],
)
