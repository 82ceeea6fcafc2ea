"""Data-side regularisation used next to an optimizer: mixup and cutmix."""
