# DaVinci large (ours: the paper's code ships only base; see docs/model.md): the wide
# ResNet-101-2 trunk (the original's 'huge' switch), 1024 wide, 16 heads, FFN 4096,
# 12 encoder + 12 decoder layers. Same data, tokenizer and recipe as base.
#   bash tools/dist_train.sh configs/davinci_large.py 8
_base_ = ['davinci_base.py']

model = dict(
    hidden_size=1024,
    num_heads=16,
    intermediate_size=4096,
    encoder_layers=12,
    decoder_layers=12,
    image_embedder=dict(width_per_group=128),  # wide ResNet-101-2
)
