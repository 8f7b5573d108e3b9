"""The ASE calculator's public import path; it lives with the model it runs (pipeline.models.calculator)."""
from pipeline.models.calculator import AtomforgeCalculator, DirectForcesWarning, calculator  # noqa: F401
from pipeline.models.predict import predict  # noqa: F401
