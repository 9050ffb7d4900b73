"""Pure helpers every method shares (NumPy / OpenCV / pycocotools only). Imports nothing else of wsis."""
import importlib.util


def has_detectron2():
    """Whether detectron2 can be imported, without importing it."""
    try:
        return importlib.util.find_spec("detectron2") is not None
    except (ImportError, ValueError):  # an import hook refused it, or a None entry in sys.modules
        return False
