"""Every value of the seven shipped recipes against the official training configs (and the papers), after the lr
rule at each recipe's reference world size: the table below holds the official values with their sources
(repository, file, key). Every key a recipe sets must be in its table (nothing unchecked), and no recipe may still
say UNVERIFIED."""

from pathlib import Path

import pytest

from vitkit.train.config_file import load_config
from vitkit.train.lr_rule import resolve_lr
from vitkit.train.run import TrainConfig

RECIPES = Path(__file__).parent.parent / "recipes"
DEIT, SWIN, CVT = "facebookresearch/deit", "microsoft/Swin-Transformer", "microsoft/CvT"
MVIT, TSF, SCENIC = "facebookresearch/mvit", "facebookresearch/TimeSformer", "google-research/scenic"
CVT_YAML, MVIT_YAML = f"{CVT} experiments/imagenet/cvt/cvt-13-224x224.yaml", f"{MVIT} configs/MVITv2_S.yaml"
MVIT_DEF, TSF_YAML = f"{MVIT} mvit/config/defaults.py", f"{TSF} configs/Kinetics/TimeSformer_divST_8x32_224.yaml"
TSF_DEF, VIVIT = f"{TSF} timesformer/config/defaults.py", \
    f"{SCENIC} scenic/projects/vivit/configs/kinetics400/vivit_base_factorised_encoder.py"

# What the recipes do not set themselves (where the data lives, the precision the lead chooses, the model's name
# is the table's key) and values common to every DeiT-style image recipe.
NOT_TRAINING = {"data", "precision", "model"}
_DEIT = {  # facebookresearch/deit main.py defaults (and Table 9 of arXiv 2012.12877)
    "epochs": (300, f"{DEIT} main.py --epochs"), "global_batch": (1024, "arXiv 2012.12877 Table 9; README_deit.md"),
    "lr": (1e-3, f"{DEIT} main.py --lr 5e-4 × batch × world size / 512 at 1024"),
    "opt": ("adamw", f"{DEIT} main.py --opt"), "weight_decay": (0.05, f"{DEIT} main.py --weight-decay"),
    "warmup_epochs": (5, f"{DEIT} main.py --warmup-epochs"), "warmup_lr": (1e-6, f"{DEIT} main.py --warmup-lr"),
    "min_lr": (1e-5, f"{DEIT} main.py --min-lr"), "sched": ("cosine", f"{DEIT} main.py --sched"),
    "clip_grad": (None, f"{DEIT} main.py --clip-grad"), "label_smoothing": (0.1, f"{DEIT} main.py --smoothing"),
    "randaugment": ("rand-m9-mstd0.5-inc1", f"{DEIT} main.py --aa"), "reprob": (0.25, f"{DEIT} main.py --reprob"),
    "mixup": (0.8, f"{DEIT} main.py --mixup"), "cutmix": (1.0, f"{DEIT} main.py --cutmix"),
    "mix_prob": (1.0, f"{DEIT} main.py --mixup-prob"), "switch_prob": (0.5, f"{DEIT} main.py --mixup-switch-prob"),
    "repeated_aug": (3, f"{DEIT} main.py repeated_aug True -> samplers.py RASampler num_repeats 3"),
    "crop_pct": (0.875, f"{DEIT} main.py --eval-crop-ratio"),
    "overrides.drop_path_rate": (0.1, f"{DEIT} main.py --drop-path"),
    "overrides.drop_rate": (0.0, f"{DEIT} main.py --drop"),
    "distill": ("hard", f"{DEIT} README_deit.md --distillation-type hard"),
    "teacher": ("tv:regnet_y_16gf", f"{DEIT} main.py --teacher-model regnety_160 (RegNetY-16GF)"),
    "alpha": (0.5, f"{DEIT} main.py --distillation-alpha"), "tau": (1.0, f"{DEIT} main.py --distillation-tau"),
    "ema": (0.99996, f"{DEIT} main.py --model-ema (default on) --model-ema-decay"),
}
OFFICIAL = {
    "deit_small_distilled_imagenet": {**_DEIT, "world_size": (4, f"{DEIT} README_deit.md: DeiT-small on 4 GPUs"),
                                      "batch_size": (256, f"{DEIT} README_deit.md --batch-size 256")},
    "deit_base_distilled_imagenet": {**_DEIT, "world_size": (16, f"{DEIT} README_deit.md: 2 nodes × 8 GPUs"),
                                     "batch_size": (64, f"{DEIT} main.py --batch-size 64")},
    "swin_tiny_imagenet": {
        "epochs": (300, f"{SWIN} config.py TRAIN.EPOCHS"), "world_size": (8, f"{SWIN} get_started.md (8 GPUs)"),
        "batch_size": (128, f"{SWIN} get_started.md --batch-size 128"), "global_batch": (1024, "arXiv 2103.14030 §4.1"),
        "lr": (1e-3, f"{SWIN} config.py TRAIN.BASE_LR 5e-4, main.py × batch × world size / 512"),
        "opt": ("adamw", f"{SWIN} config.py TRAIN.OPTIMIZER.NAME"),
        "weight_decay": (0.05, f"{SWIN} config.py TRAIN.WEIGHT_DECAY"),
        "warmup_epochs": (20, f"{SWIN} config.py TRAIN.WARMUP_EPOCHS"),
        "warmup_lr": (1e-6, f"{SWIN} config.py TRAIN.WARMUP_LR 5e-7 × 1024 / 512"),
        "min_lr": (1e-5, f"{SWIN} config.py TRAIN.MIN_LR 5e-6 × 1024 / 512"),
        "sched": ("cosine", f"{SWIN} config.py TRAIN.LR_SCHEDULER.NAME"),
        "clip_grad": (5.0, f"{SWIN} config.py TRAIN.CLIP_GRAD"),
        "label_smoothing": (0.1, f"{SWIN} config.py MODEL.LABEL_SMOOTHING"),
        "randaugment": ("rand-m9-mstd0.5-inc1", f"{SWIN} config.py AUG.AUTO_AUGMENT"),
        "reprob": (0.25, f"{SWIN} config.py AUG.REPROB"), "mixup": (0.8, f"{SWIN} config.py AUG.MIXUP"),
        "cutmix": (1.0, f"{SWIN} config.py AUG.CUTMIX"), "mix_prob": (1.0, f"{SWIN} config.py AUG.MIXUP_PROB"),
        "switch_prob": (0.5, f"{SWIN} config.py AUG.MIXUP_SWITCH_PROB"),
        "repeated_aug": (1, "arXiv 2103.14030 §4.1: no repeated augmentation"),
        "crop_pct": (0.875, f"{SWIN} data/build.py int(256 / 224 × IMG_SIZE)"),
        "overrides.drop_path_rate": (0.2, f"{SWIN} configs/swin/swin_tiny_patch4_window7_224.yaml DROP_PATH_RATE"),
        "ema": (None, "arXiv 2103.14030 §4.1: no EMA"),
    },
    "cvt_13_imagenet": {
        "epochs": (300, f"{CVT_YAML} TRAIN.END_EPOCH"), "world_size": (8, f"{CVT} README.md run.sh -g 8"),
        "batch_size": (256, f"{CVT_YAML} TRAIN.BATCH_SIZE_PER_GPU"), "global_batch": (2048, "arXiv 2103.15808 §4.1"),
        "lr": (2e-3, f"{CVT_YAML} TRAIN.LR 0.00025 × world size (lib/config/default.py SCALE_LR)"),
        "opt": ("adamw", f"{CVT_YAML} TRAIN.OPTIMIZER"), "weight_decay": (0.05, f"{CVT_YAML} TRAIN.WD"),
        "warmup_epochs": (5, f"{CVT_YAML} LR_SCHEDULER.ARGS.warmup_epochs"),
        "warmup_lr": (1e-6, f"{CVT_YAML} LR_SCHEDULER.ARGS.warmup_lr"),
        "min_lr": (1e-5, f"{CVT_YAML} LR_SCHEDULER.ARGS.min_lr (a ratio of 0.005)"),
        "sched": ("cosine", f"{CVT_YAML} LR_SCHEDULER.ARGS.sched"),
        "clip_grad": (None, f"{CVT} lib/config/default.py TRAIN.CLIP_GRAD_NORM 0.0"),
        "label_smoothing": (0.1, f"{CVT_YAML} LOSS.LABEL_SMOOTHING"),
        "randaugment": ("rand-m9-mstd0.5-inc1", f"{CVT_YAML} AUG.TIMM_AUG.AUTO_AUGMENT"),
        "reprob": (0.25, f"{CVT_YAML} AUG.TIMM_AUG.RE_PROB"), "mixup": (0.8, f"{CVT_YAML} AUG.MIXUP"),
        "cutmix": (1.0, f"{CVT_YAML} AUG.MIXCUT"), "mix_prob": (1.0, f"{CVT_YAML} AUG.MIXUP_PROB"),
        "switch_prob": (0.5, f"{CVT} lib/config/default.py AUG.MIXUP_SWITCH_PROB"),
        "repeated_aug": (1, f"{CVT_YAML}: no repeated augmentation"),
        "crop_pct": (0.875, f"{CVT} lib/dataset/transformas/build.py int(IMAGE_SIZE / 0.875)"),
        "overrides.drop_path_rate": ([0.0, 0.0, 0.1], f"{CVT_YAML} MODEL.SPEC.DROP_PATH_RATE (per stage)"),
        "ema": (None, f"{CVT_YAML}: no EMA"),
    },
    "mvitv2_small_imagenet": {
        "epochs": (300, f"{MVIT_YAML} SOLVER.MAX_EPOCH"), "world_size": (8, f"{MVIT} README.md NUM_GPUS 8"),
        "batch_size": (32, f"{MVIT_DEF} TRAIN.BATCH_SIZE 256 / NUM_GPUS 8"),
        "global_batch": (256, f"{MVIT} README.md TRAIN.BATCH_SIZE 256"),
        "lr": (2.5e-4, f"{MVIT_YAML} SOLVER.BASE_LR (× NUM_SHARDS 1)"),
        "opt": ("adamw", f"{MVIT_YAML} SOLVER.OPTIMIZING_METHOD"),
        "weight_decay": (0.05, f"{MVIT_YAML} SOLVER.WEIGHT_DECAY"),
        "warmup_epochs": (70, f"{MVIT_DEF} SOLVER.WARMUP_EPOCHS"),
        "warmup_lr": (1e-8, f"{MVIT_DEF} SOLVER.WARMUP_START_LR"),
        "min_lr": (1e-6, f"{MVIT_DEF} SOLVER.COSINE_END_LR (0.004 × BASE_LR)"),
        "sched": ("cosine", f"{MVIT_YAML} SOLVER.LR_POLICY"), "clip_grad": (1.0, f"{MVIT_YAML} SOLVER.CLIP_GRAD_L2NORM"),
        "label_smoothing": (0.1, f"{MVIT_DEF} MIXUP.LABEL_SMOOTH_VALUE"),
        "randaugment": ("rand-m9-n6-mstd0.5-inc1", f"{MVIT_DEF} AUG.AA_TYPE"),
        "reprob": (0.25, f"{MVIT_DEF} AUG.RE_PROB"), "mixup": (0.8, f"{MVIT_DEF} MIXUP.ALPHA"),
        "cutmix": (1.0, f"{MVIT_DEF} MIXUP.CUTMIX_ALPHA"), "mix_prob": (1.0, f"{MVIT_DEF} MIXUP.PROB"),
        "switch_prob": (0.5, f"{MVIT_DEF} MIXUP.SWITCH_PROB"), "repeated_aug": (1, f"{MVIT_DEF} AUG.NUM_SAMPLE 1"),
        "crop_pct": (0.875, f"{MVIT_DEF} DATA.VAL_CROP_RATIO"),
        "overrides.drop_path_rate": (0.1, f"{MVIT_YAML} MVIT.DROPPATH_RATE"), "ema": (None, f"{MVIT}: no EMA"),
    },
    "timesformer_divided_8x224_k400": {
        "init": ("vit_base_patch16_224.orig_in21k_ft_in1k.pth",
                 f"{TSF} timesformer/models/vit.py jx_vit_base_p16_224-80ecf9dd.pth (the original ViT-B/16)"),
        "epochs": (15, f"{TSF_YAML} SOLVER.MAX_EPOCH"), "world_size": (8, f"{TSF_YAML} NUM_GPUS"),
        "batch_size": (1, f"{TSF_YAML} TRAIN.BATCH_SIZE 8 / NUM_GPUS 8"),
        "global_batch": (8, f"{TSF_YAML} TRAIN.BATCH_SIZE"), "lr": (0.005, f"{TSF_YAML} SOLVER.BASE_LR"),
        "opt": ("sgd", f"{TSF_YAML} SOLVER.OPTIMIZING_METHOD"), "momentum": (0.9, f"{TSF_YAML} SOLVER.MOMENTUM"),
        "nesterov": (True, f"{TSF_DEF} SOLVER.NESTEROV"), "weight_decay": (1e-4, f"{TSF_YAML} SOLVER.WEIGHT_DECAY"),
        "warmup_epochs": (0, f"{TSF_DEF} SOLVER.WARMUP_EPOCHS"),
        "sched": ("multistep", f"{TSF_YAML} SOLVER.LR_POLICY steps_with_relative_lrs"),
        "decay_milestones": ([11, 14], f"{TSF_YAML} SOLVER.STEPS [0, 11, 14]"),
        "decay_rate": (0.1, f"{TSF_YAML} SOLVER.LRS [1, 0.1, 0.01]"),
        "clip_grad": (None, f"{TSF_DEF}: no gradient clipping"),
        "label_smoothing": (0.0, f"{TSF_YAML} MODEL.LOSS_FUNC cross_entropy"),
        "frame_stride": (32, f"{TSF_YAML} DATA.SAMPLING_RATE"),
        "sampling": ("stride", f"{TSF} timesformer/datasets/kinetics.py temporal_sample_index -1 (random)"),
        "scale_jitter": ([256, 320], f"{TSF_YAML} DATA.TRAIN_JITTER_SCALES"),
        "test_views": ("1x3", f"{TSF_YAML} TEST.NUM_ENSEMBLE_VIEWS 1, NUM_SPATIAL_CROPS 3"),
        "mixup": (0.0, f"{TSF_DEF} MIXUP.ENABLED False"),
        "overrides.num_frames": (8, f"{TSF_YAML} DATA.NUM_FRAMES"),
        "overrides.drop_path_rate": (0.1, f"{TSF} timesformer/models/vit.py drop_path_rate=0.1"),
    },
    "vivit_b_factorised_encoder_k400": {
        "init": ("vit_base_patch16_224.orig_in21k.pth", f"{VIVIT} init_from (ImageNet-21k ViT-B/16)"),
        "inflate": ("central", f"{VIVIT} kernel_init_method central_frame_initializer"),
        "epochs": (30, f"{VIVIT} num_training_epochs"), "world_size": (8, "vitkit's choice (scenic runs on TPU hosts)"),
        "batch_size": (8, f"{VIVIT} batch_size 64 over 8 processes"), "global_batch": (64, f"{VIVIT} batch_size"),
        "lr": (0.05, f"{VIVIT} base_learning_rate"),
        "opt": ("sgd", f"{VIVIT} optimizer momentum -> {SCENIC} scenic/train_lib/optimizers.py SGD"),
        "momentum": (0.9, f"{SCENIC} scenic/train_lib/optimizers.py momentum default 0.9"),
        "nesterov": (False, f"{SCENIC} scenic/train_lib/optimizers.py (Nesterov only for 'nesterov')"),
        "weight_decay": (0.0, f"{VIVIT} l2_decay_factor"), "warmup_epochs": (2.5, f"{VIVIT} warmup_steps"),
        "warmup_lr": (0.0, f"{VIVIT} linear_warmup from 0"), "min_lr": (0.0, f"{VIVIT} cosine_decay to 0"),
        "sched": ("cosine", f"{VIVIT} factors constant * cosine_decay * linear_warmup"),
        "clip_grad": (1.0, f"{VIVIT} max_grad_norm"), "label_smoothing": (0.0, f"{VIVIT} label_smoothing None"),
        "frame_stride": (2, f"{VIVIT} stride"), "sampling": ("stride", f"{VIVIT} (DMVR's random strided clip)"),
        "scale_jitter": ([256, 256], f"{VIVIT} min_resize 256"),
        "aspect_jitter": ([0.9, 1.33], f"{VIVIT} scale_min_factor, scale_max_factor"),
        "color_augment": ([0.8, 0.1], f"{VIVIT} prob_color_augment, prob_color_drop"),
        "test_views": ("4x3", f"{VIVIT} num_test_clips 4, do_three_spatial_crops"),
        "mixup": (0.0, f"{VIVIT}: no mixup"), "overrides.num_frames": (32, f"{VIVIT} num_frames"),
        "overrides.drop_path_rate": (0.0, f"{VIVIT}: no stochastic_droplayer_rate (scenic's default 0)"),
    },
}
DERIVED = {"lr", "min_lr", "warmup_lr", "global_batch", "world_size"}  # what the test computes from the recipe
RULE_KEYS = {"lr_base", "lr_base_size", "lr_rule", "ref_global_batch", "min_lr_ratio"}  # checked through DERIVED


def resolved(name: str) -> dict:
    """The recipe's settings as its run resolves them at its reference world size (flat: overrides.KEY)."""
    settings = load_config(RECIPES / f"{name}.yaml")
    cfg = TrainConfig(**settings)
    cfg.validate()
    per_step = cfg.batch_size * cfg.accum_steps
    world, rest = divmod(cfg.ref_global_batch, per_step)
    assert rest == 0, f"{name}: ref_global_batch {cfg.ref_global_batch} is not a multiple of {per_step}"
    lr, _ = resolve_lr(cfg.lr, cfg.lr_base, cfg.lr_base_size, cfg.lr_rule, cfg.batch_size, cfg.accum_steps, world)
    flat = {k: v for k, v in settings.items() if k != "overrides"}
    flat.update({f"overrides.{k}": v for k, v in settings.get("overrides", {}).items()})
    flat.update(lr=lr, world_size=world, global_batch=cfg.ref_global_batch, warmup_lr=cfg.warmup_lr,
                min_lr=cfg.min_lr if cfg.min_lr is not None else lr * cfg.min_lr_ratio)
    return flat


def test_the_table_covers_the_seven_recipes():
    assert set(OFFICIAL) == {p.stem for p in RECIPES.glob("*.yaml")}


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_every_recipe_value_is_the_official_one(name):
    got, table = resolved(name), OFFICIAL[name]
    for key, (want, source) in table.items():
        assert key in got, f"{name}: {key} ({source}) is not set by the recipe"
        value = got[key]
        if isinstance(want, float) and want:
            assert value == pytest.approx(want, rel=1e-9), f"{name}: {key} = {value}, official {want} ({source})"
        else:
            assert value == want, f"{name}: {key} = {value!r}, official {want!r} ({source})"
    unchecked = set(got) - set(table) - DERIVED - RULE_KEYS - NOT_TRAINING
    assert not unchecked, f"{name}: recipe keys without an official value in the table: {sorted(unchecked)}"
    assert "UNVERIFIED" not in (RECIPES / f"{name}.yaml").read_text()


def test_a_single_gpu_resolves_the_scaled_lr():
    """At 1 process the rule scales the paper's lr by the global batch (e.g. DeiT-B: 64 images -> 5e-4 × 64/512)."""
    for name, table in OFFICIAL.items():
        cfg = TrainConfig(**load_config(RECIPES / f"{name}.yaml"))
        lr, note = resolve_lr(cfg.lr, cfg.lr_base, cfg.lr_base_size, cfg.lr_rule, cfg.batch_size, 1, 1,
                              cfg.ref_global_batch)
        ratio = cfg.batch_size / table["global_batch"][0]
        assert lr == pytest.approx(table["lr"][0] * ratio, rel=1e-9), name
        if table["world_size"][0] > 1:
            assert note.startswith(f"global batch {cfg.batch_size} differs from the recipe's {cfg.ref_global_batch}")
