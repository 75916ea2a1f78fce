"""Per-channel pixel statistics (mean, std on [0, 1] pixels) that published weights normalise their inputs with;
models name them in their data configs, data/ transforms apply them."""

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # torchvision's ImageNet statistics
INCEPTION_MEAN = INCEPTION_STD = (0.5, 0.5, 0.5)  # pixels to [-1, 1] (Inception, ViT augreg, Scenic)
SLOWFAST_MEAN, SLOWFAST_STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)  # PySlowFast's Kinetics statistics
