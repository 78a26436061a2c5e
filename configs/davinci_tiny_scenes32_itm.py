# The quick start's tiny DaVinci with image-text matching (ITM) added to its pretraining: an
# experiment for the NLVR2 scene recipe (docs/tasks/nlvr2.md), not the quick start's recipe.
#   python tools/train.py configs/davinci_tiny_scenes32_itm.py --work-dir work_dirs/davinci_itm \
#       --cfg-options \
#       model.image_tokenizer.checkpoint=work_dirs/quickstart/tokenizer/vqgan.safetensors
#   python tools/train.py configs/downstream/nlvr2/nlvr2_scenes32.py \
#       --cfg-options model.pretrained=work_dirs/davinci_itm/iter_700.pth
# `--cfg-options model.objectives.2.weight=1.0` sets the ITM loss weight (measured: 0.25, 1.0).
_base_ = ['./davinci_tiny_scenes32.py']

model = dict(
    objectives=[
        # the quick start's two objectives, unchanged
        dict(type='PrefixLM', weight=1.0, empty_prefix_prob=0.8),
        dict(type='PrefixImage', weight=1.0, mode='static', input_noise=0.15),
        # does this caption describe this image? negatives: another caption or image of the
        # batch, drawn uniformly; a quarter weight keeps the captions at 0.98 (1.0: 0.86)
        dict(type='ImageTextMatching', weight=0.25, name='itm'),
    ],
)
