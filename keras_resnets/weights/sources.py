"""The table of downloadable weights: data only.

Every file is pinned by what is really known of it:

- torchvision: the file name carries the first hex digits of the file's
  SHA-256 (`resnet50-0676ba61.pth`); torchvision (`torch.hub`) checks that
  prefix after download, and so do we. URLs from torchvision 0.29's
  `ResNet*_Weights` enums.
- timm: the GitHub-release files named by timm's `clean_checkpoint.py`
  (`sha256[:8]` in the name) and the torchvision files timm reuses. URLs from
  timm 1.0's pretrained configurations. timm's Hugging Face-only weights
  (`resnetv2_50.a1h_in1k`, ...) have no published hash that we could pin:
  they are listed with `file_hash=None`; download them yourself and pass the
  path.
- keras.applications: the full MD5 digests that keras.applications itself
  pins (`WEIGHTS_HASHES` in `keras/src/applications/resnet.py`), for the file
  with and without the classifier.
"""

_TORCHVISION = "https://download.pytorch.org/models/"
_KERAS = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
_RSB = "https://github.com/huggingface/pytorch-image-models/releases/download/v0.1-rsb-weights/"
_RSB_RW = "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-rsb-weights/"
_TIMM_HF = "https://github.com/huggingface/pytorch-image-models/releases/download/v0.1-weights/"
_TIMM_RW = "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/"
_TIMM_TPU = "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-tpu-weights/"
_GLUON = "https://github.com/rwightman/pytorch-pretrained-gluonresnet/releases/download/v0.1/"
_TRESNET = "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-tresnet/"
_RS = "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-rs-weights/"

# (model, tag) -> file name under download.pytorch.org/models/.
TORCHVISION_FILES = {
    ("resnet18", "IMAGENET1K_V1"): "resnet18-f37072fd.pth",
    ("resnet34", "IMAGENET1K_V1"): "resnet34-b627a593.pth",
    ("resnet50", "IMAGENET1K_V1"): "resnet50-0676ba61.pth",
    ("resnet50", "IMAGENET1K_V2"): "resnet50-11ad3fa6.pth",
    ("resnet101", "IMAGENET1K_V1"): "resnet101-63fe2227.pth",
    ("resnet101", "IMAGENET1K_V2"): "resnet101-cd907fc2.pth",
    ("resnet152", "IMAGENET1K_V1"): "resnet152-394f9c45.pth",
    ("resnet152", "IMAGENET1K_V2"): "resnet152-f82ba261.pth",
    ("resnext50_32x4d", "IMAGENET1K_V1"): "resnext50_32x4d-7cdf4587.pth",
    ("resnext50_32x4d", "IMAGENET1K_V2"): "resnext50_32x4d-1a0047aa.pth",
    ("resnext101_32x8d", "IMAGENET1K_V1"): "resnext101_32x8d-8ba56ff5.pth",
    ("resnext101_32x8d", "IMAGENET1K_V2"): "resnext101_32x8d-110c445d.pth",
    ("resnext101_64x4d", "IMAGENET1K_V1"): "resnext101_64x4d-173b62eb.pth",
    ("wide_resnet50_2", "IMAGENET1K_V1"): "wide_resnet50_2-95faca4d.pth",
    ("wide_resnet50_2", "IMAGENET1K_V2"): "wide_resnet50_2-9ba9bcbe.pth",
    ("wide_resnet101_2", "IMAGENET1K_V1"): "wide_resnet101_2-32ee1156.pth",
    ("wide_resnet101_2", "IMAGENET1K_V2"): "wide_resnet101_2-d733dc28.pth",
}

# model -> (MD5 with the classifier, MD5 without), keras.applications' pins.
KERAS_MD5 = {
    "resnet50": ("2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626"),
    "resnet101": ("f1aeb4b969a6efcfb50fad2f0c20cfc5", "88cf7a10940856eca736dc7b7e228a21"),
    "resnet152": ("100835be76be38e30d865e96f2aaae62", "ee4c566cf9a93f14d82f913c2dc6dd0c"),
    "resnet50v2": ("3ef43a0b657b3be2300d5770ece849e0", "fac2f116257151a9d068a22e544a4917"),
    "resnet101v2": ("6343647c601c52e1368623803854d971", "c0ed64b8031c3730f411d2eb4eea35b5"),
    "resnet152v2": ("a49b44d1979771252814e80f8ec446f9", "ed17cf2e0169df9d443503ef94b23b33"),
}
KERAS_URL = _KERAS + "{model}_weights_tf_dim_ordering_tf_kernels{suffix}.h5"

# timm name -> URL. The timm architecture is the part before the dot.
TIMM_URLS = {
    "resnet18.a1_in1k": _RSB + "resnet18_a1_0-d63eafa0.pth",
    "resnet18.a2_in1k": _RSB + "resnet18_a2_0-b61bd467.pth",
    "resnet18.a3_in1k": _RSB + "resnet18_a3_0-40c531c8.pth",
    "resnet18.gluon_in1k": _GLUON + "gluon_resnet18_v1b-0757602b.pth",
    "resnet18.tv_in1k": _TORCHVISION + "resnet18-f37072fd.pth",
    "resnet18d.ra2_in1k": _TIMM_RW + "resnet18d_ra2-48a79e06.pth",
    "resnet34.a1_in1k": _RSB + "resnet34_a1_0-46f8f793.pth",
    "resnet34.a2_in1k": _RSB + "resnet34_a2_0-82d47d71.pth",
    "resnet34.a3_in1k": _RSB + "resnet34_a3_0-a20cabb6.pth",
    "resnet34.bt_in1k": _TIMM_RW + "resnet34-43635321.pth",
    "resnet34.gluon_in1k": _GLUON + "gluon_resnet34_v1b-c6d82d59.pth",
    "resnet34.tv_in1k": _TORCHVISION + "resnet34-b627a593.pth",
    "resnet34d.ra2_in1k": _TIMM_RW + "resnet34d_ra2-f8dcfcaf.pth",
    "resnet50.a1_in1k": _RSB_RW + "resnet50_a1_0-14fe96d1.pth",
    "resnet50.a1h_in1k": _RSB + "resnet50_a1h2_176-001a1197.pth",
    "resnet50.a2_in1k": _RSB + "resnet50_a2_0-a2746f79.pth",
    "resnet50.a3_in1k": _RSB + "resnet50_a3_0-59cae1ef.pth",
    "resnet50.am_in1k": _TIMM_HF + "resnet50_am-6c502b37.pth",
    "resnet50.b1k_in1k": _RSB + "resnet50_b1k-532a802a.pth",
    "resnet50.b2k_in1k": _RSB + "resnet50_b2k-1ba180c1.pth",
    "resnet50.bt_in1k": _TIMM_HF + "rw_resnet50-86acaeed.pth",
    "resnet50.c1_in1k": _RSB + "resnet50_c1-5ba5e060.pth",
    "resnet50.c2_in1k": _RSB + "resnet50_c2-d01e05b2.pth",
    "resnet50.d_in1k": _RSB + "resnet50_d-f39db8af.pth",
    "resnet50.gluon_in1k": _GLUON + "gluon_resnet50_v1b-0ebe02e2.pth",
    "resnet50.ra_in1k": _TIMM_HF + "resnet50_ra-85ebb6e5.pth",
    "resnet50.ram_in1k": _TIMM_HF + "resnet50_ram-a26f946b.pth",
    "resnet50.tv2_in1k": _TORCHVISION + "resnet50-11ad3fa6.pth",
    "resnet50.tv_in1k": _TORCHVISION + "resnet50-0676ba61.pth",
    "resnet50d.a1_in1k": _RSB + "resnet50d_a1_0-e20cff14.pth",
    "resnet50d.a2_in1k": _RSB + "resnet50d_a2_0-a3adc64d.pth",
    "resnet50d.a3_in1k": _RSB + "resnet50d_a3_0-403fdfad.pth",
    "resnet50d.gluon_in1k": _GLUON + "gluon_resnet50_v1d-818a1b1b.pth",
    "resnet50d.ra2_in1k": _TIMM_RW + "resnet50d_ra2-464e36ba.pth",
    "resnet101.a1_in1k": _RSB + "resnet101_a1_0-cdcb52a9.pth",
    "resnet101.a1h_in1k": _RSB_RW + "resnet101_a1h-36d3f2aa.pth",
    "resnet101.a2_in1k": _RSB + "resnet101_a2_0-6edb36c7.pth",
    "resnet101.a3_in1k": _RSB + "resnet101_a3_0-1db14157.pth",
    "resnet101.gluon_in1k": _GLUON + "gluon_resnet101_v1b-3b017079.pth",
    "resnet101.tv2_in1k": _TORCHVISION + "resnet101-cd907fc2.pth",
    "resnet101.tv_in1k": _TORCHVISION + "resnet101-63fe2227.pth",
    "resnet101d.gluon_in1k": _GLUON + "gluon_resnet101_v1d-0f9c8644.pth",
    "resnet101d.ra2_in1k": _TIMM_RW + "resnet101d_ra2-2803ffab.pth",
    "resnet152.a1_in1k": _RSB + "resnet152_a1_0-2eee8a7a.pth",
    "resnet152.a1h_in1k": _RSB_RW + "resnet152_a1h-dc400468.pth",
    "resnet152.a2_in1k": _RSB + "resnet152_a2_0-b4c6978f.pth",
    "resnet152.a3_in1k": _RSB + "resnet152_a3_0-134d4688.pth",
    "resnet152.gluon_in1k": _GLUON + "gluon_resnet152_v1b-c1edb0dd.pth",
    "resnet152.tv2_in1k": _TORCHVISION + "resnet152-f82ba261.pth",
    "resnet152.tv_in1k": _TORCHVISION + "resnet152-394f9c45.pth",
    "resnet152d.gluon_in1k": _GLUON + "gluon_resnet152_v1d-bd354e12.pth",
    "resnet152d.ra2_in1k": _TIMM_RW + "resnet152d_ra2-5cac0439.pth",
    "resnet200d.ra2_in1k": _TIMM_RW + "resnet200d_ra2-bdba9bf9.pth",
    "resnext50_32x4d.a1_in1k": _RSB + "resnext50_32x4d_a1_0-b5a91a1d.pth",
    "resnext50_32x4d.a1h_in1k": _RSB_RW + "resnext50_32x4d_a1h-0146ab0a.pth",
    "resnext50_32x4d.a2_in1k": _RSB + "resnext50_32x4d_a2_0-efc76add.pth",
    "resnext50_32x4d.a3_in1k": _RSB + "resnext50_32x4d_a3_0-3e450271.pth",
    "resnext50_32x4d.gluon_in1k": _GLUON + "gluon_resnext50_32x4d-e6a097c1.pth",
    "resnext50_32x4d.ra_in1k": _TIMM_HF + "resnext50_32x4d_ra-d733960d.pth",
    "resnext50_32x4d.tv2_in1k": _TORCHVISION + "resnext50_32x4d-1a0047aa.pth",
    "resnext50_32x4d.tv_in1k": _TORCHVISION + "resnext50_32x4d-7cdf4587.pth",
    "resnext50d_32x4d.bt_in1k": _TIMM_RW + "resnext50d_32x4d-103e99f8.pth",
    "resnext101_32x4d.gluon_in1k": _GLUON + "gluon_resnext101_32x4d-b253c8c4.pth",
    "resnext101_32x8d.tv2_in1k": _TORCHVISION + "resnext101_32x8d-110c445d.pth",
    "resnext101_32x8d.tv_in1k": _TORCHVISION + "resnext101_32x8d-8ba56ff5.pth",
    "resnext101_64x4d.c1_in1k": _TIMM_TPU + "resnext101_64x4d_c-0d0e0cc0.pth",
    "resnext101_64x4d.gluon_in1k": _GLUON + "gluon_resnext101_64x4d-f9a8e184.pth",
    "resnext101_64x4d.tv_in1k": _TORCHVISION + "resnext101_64x4d-173b62eb.pth",
    "wide_resnet50_2.racm_in1k": _TIMM_RW + "wide_resnet50_racm-8234f177.pth",
    "wide_resnet50_2.tv2_in1k": _TORCHVISION + "wide_resnet50_2-9ba9bcbe.pth",
    "wide_resnet50_2.tv_in1k": _TORCHVISION + "wide_resnet50_2-95faca4d.pth",
    "wide_resnet101_2.tv2_in1k": _TORCHVISION + "wide_resnet101_2-d733dc28.pth",
    "wide_resnet101_2.tv_in1k": _TORCHVISION + "wide_resnet101_2-32ee1156.pth",
    "seresnet50.a1_in1k": _RSB + "seresnet50_a1_0-ffa00869.pth",
    "seresnet50.a2_in1k": _RSB + "seresnet50_a2_0-850de0d9.pth",
    "seresnet50.a3_in1k": _RSB + "seresnet50_a3_0-317ecd56.pth",
    "seresnet50.ra2_in1k": _TIMM_RW + "seresnet50_ra_224-8efdb4bb.pth",
    "seresnext50_32x4d.gluon_in1k": _GLUON + "gluon_seresnext50_32x4d-90cf2d6e.pth",
    "seresnext50_32x4d.racm_in1k": _TIMM_RW + "seresnext50_32x4d_racm-a304a460.pth",
    "seresnext101_32x4d.gluon_in1k": _GLUON + "gluon_seresnext101_32x4d-cf52900d.pth",
    "ecaresnet50d.miil_in1k": _TRESNET + "ecaresnet50d-93c81e3b.pth",
    "ecaresnet101d.miil_in1k": _TRESNET + "ecaresnet101d-153dad65.pth",
    "resnetrs50.tf_in1k": _RS + "resnetrs50_ema-6b53758b.pth",
    "resnetrs101.tf_in1k": _RS + "resnetrs101_i192_ema-1509bbf6.pth",
    "resnetrs152.tf_in1k": _RS + "resnetrs152_i256_ema-a9aff7f9.pth",
    "resnetrs200.tf_in1k": _TIMM_TPU + "resnetrs200_c-6b698b88.pth",
    # Hugging Face only: no pinned hash (see the module docstring).
    "resnetv2_50.a1h_in1k": "https://huggingface.co/timm/resnetv2_50.a1h_in1k/resolve/main/model.safetensors",
    "resnetv2_101.a1h_in1k": "https://huggingface.co/timm/resnetv2_101.a1h_in1k/resolve/main/model.safetensors",
}

# timm architecture -> (keras_resnets model, build arguments).
TIMM_ARCHITECTURES = {
    **{f"resnet{d}": (f"resnet{d}", {}) for d in (18, 34, 50, 101, 152, 200)},
    **{f"resnet{d}d": (f"resnet{d}d", {}) for d in (18, 34, 50, 101, 152, 200)},
    **{n: (n, {}) for n in ("resnext50_32x4d", "resnext101_32x4d", "resnext101_32x8d",
                            "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
                            "resnext50d_32x4d", "seresnet50", "seresnext50_32x4d",
                            "seresnext101_32x4d", "ecaresnet50d", "ecaresnet101d")},
    **{f"resnetrs{d}": (f"resnetrs{d}", {}) for d in (50, 101, 152, 200)},
    "resnetv2_50": ("resnet50v2", {"layout": "torchvision"}),
    "resnetv2_101": ("resnet101v2", {"layout": "torchvision"}),
}
# The "d" variants' files also load onto the plain model built with the deep
# stem and average-pool shortcut (the same network).
TIMM_ALSO = {
    **{f"resnet{d}d": (f"resnet{d}", {"stem": "deep", "shortcut": "D"}) for d in (18, 34, 50, 101, 152, 200)},
    "resnext50d_32x4d": ("resnext50_32x4d", {"stem": "deep", "shortcut": "D"}),
}
# timm weights normalized with other than ImageNet's mean and std: [-1, 1].
TIMM_TF_PREPROCESSING = ("resnetv2_50.a1h_in1k", "resnetv2_101.a1h_in1k")

# What weights="imagenet" means for each model.
IMAGENET_DEFAULT = {
    **{model: "torchvision:IMAGENET1K_V1" for model, _ in TORCHVISION_FILES},
    "resnet50v2": "keras:imagenet",
    "resnet101v2": "keras:imagenet",
    "resnet152v2": "keras:imagenet",
}
