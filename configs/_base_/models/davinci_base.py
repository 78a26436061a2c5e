# DaVinci base (docs/original.md section 1): ResNet-101 stages 1-3 (stride 16) -> 768-d
# tokens, a 6-layer bidirectional encoder and a 6-layer causal decoder (768 wide, 12 heads, FFN
# 3072, post-LN, GELU, LayerNorm eps 1e-12, dropout 0.1), the taming VQGAN f16/1024 as image
# tokenizer.
# Visual vocabulary, code grid and image positions (16x16 + 1 = 257) follow the tokenizer.
image_size = 256
model = dict(
    type='DaVinci',
    image_size=image_size,
    hidden_size=768,
    num_heads=12,
    intermediate_size=3072,
    encoder_layers=6,
    decoder_layers=6,
    dropout=0.1,
    max_text_positions=257,
    label_smoothing=0.0,
    # uint8 images -> (rgb - CLIP mean) / CLIP std on the model's device
    data_preprocessor=dict(type='DaVinciDataPreprocessor'),
    # the tokenizer's vocabulary, also for models that do not build it (no objective needs codes)
    visual_vocab_size=1024,
    image_code_grid=(16, 16),
    image_embedder=dict(
        type='ResNetImageEmbedder',
        stage_blocks=(3, 4, 23),  # ResNet-101 stages 1-3
        base_planes=64,
        width_per_group=64,
        # ImageNet initialisation from a local torchvision file (no downloads at run time):
        pretrained=None,  # e.g. 'checkpoints/resnet101-63fe2227.pth'
    ),
    image_tokenizer=dict(
        type='VQGAN',  # taming ImageNet f16, 1024 codes; convert with
        # tools/model_converters/taming_vqgan.py (see docs/data.md)
        checkpoint='checkpoints/vqgan_imagenet_f16_1024/vqgan.safetensors',
    ),
    objectives=[
        dict(type='PrefixLM', weight=1.0),
        dict(type='PrefixImage', weight=1.0, mode='dynamic'),
        dict(type='TextPrefixLM', weight=1.0),
    ],
)
