"""The ASE calculator's public import path; it lives with the model it runs (atomforge.pipeline.models.calculator)."""
from atomforge.pipeline.models.calculator import AtomforgeCalculator, DirectForcesWarning, calculator  # noqa: F401
from atomforge.pipeline.models.predict import predict  # noqa: F401
