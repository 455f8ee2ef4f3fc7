from .pipeline import create_pipeline, create_tolerance_pipeline  # noqa: F401
