"""Architecture search on a proxy training set: the 720-ConvNet space and the proxy evaluation (Sec. 6.5)."""

from dataset_pruning.nas.space import ConvNetArch, sample_architectures, search_space

__all__ = ["ConvNetArch", "sample_architectures", "search_space"]
