"""The one check of an ``--img-size`` given to a zoo model."""
from .errors import InvalidArgumentError

__all__ = ["MIN_IMAGE_SIZE", "require_image_size"]

# The zoo models downsample 32x: a smaller input leaves nothing for the last stage.
MIN_IMAGE_SIZE = 32


def require_image_size(size: int, option: str = "--img-size") -> int:
    """``size`` as the input side of a zoo model, or a one-line error naming ``option``."""
    if size < MIN_IMAGE_SIZE:
        raise InvalidArgumentError(f"{option} must be at least {MIN_IMAGE_SIZE} (the models downsample 32x), "
                                   f"got {size}")
    return size
