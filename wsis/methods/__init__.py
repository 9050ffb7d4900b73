"""
One package per method: ``wsis.methods.<m>`` holds everything of method ``m`` (its ``config.py``, pure modules, glue
modules named for what they register, its generator). Importing this package imports no method; ``import
wsis.modeling`` registers every method's detectron2 parts, ``import wsis.methods.generators`` every pseudo-mask
generator.
"""
