"""Pure helpers every method shares (NumPy / OpenCV / pycocotools only). Imports nothing else of wsis."""
