# The floor of the scene text-to-image scores: every test image's own tokenizer codes decoded
# (what a perfect painter with this tokenizer would give), scored by the scenes config's
# metrics (docs/tasks/text2image_coco.md). Any checkpoint of the scene model gives the same
# floor (the tokenizer is frozen); the quick start's has it:
#   python tools/test.py \
#       configs/downstream/text2image_coco/text2image_coco_scenes32_tokenizer_floor.py \
#       work_dirs/quickstart/davinci/iter_700.pth
_base_ = ['./text2image_coco_scenes32.py']

model = dict(
    head=dict(_delete_=True, type='TokenizerReconstructionHead'),  # decode(encode(real image))
)
