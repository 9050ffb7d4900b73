from .image_field import PerImageField, PerInstanceField

__all__ = ["PerImageField", "PerInstanceField"]
