from .image_field import PerImageField

__all__ = ["PerImageField"]
