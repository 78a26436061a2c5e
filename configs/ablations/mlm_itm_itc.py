# Objective mix: the encoder objectives of ALBEF-style pretraining (neither writes nor paints).
#   python tools/ablate.py configs/ablations/grid_scenes32.py --out work_dirs/ablations
_base_ = ['./_base_/pretrain_scenes32.py']

model = dict(
    objectives=[
        # first: contrastive image/text embeddings; leaves its similarities for ITM
        dict(type='ImageTextContrastive', weight=1.0, name='itc'),
        # matched or not, on the fused state; hard negatives drawn by ITC's similarities
        dict(type='ImageTextMatching', weight=1.0, name='itm'),
        # BERT-style masked caption tokens, predicted by the encoder given the image
        dict(type='MaskedLM', weight=1.0, name='mlm'),
    ],
)
