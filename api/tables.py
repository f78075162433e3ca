"""Every ORM table, imported in one place so relationships resolve and Alembic finds them all."""

from api.auth.tables import Account, ApiToken, Role
from api.db import Base
from api.jobs.tables import AblationJob, JobStage, JobStatus
from api.models.tables import DiffusionModel, ModelFamily, ModelVersion
from api.optouts.tables import ConceptKind, OptOutRequest, RequestStatus

__all__ = [
    "AblationJob",
    "Account",
    "ApiToken",
    "Base",
    "ConceptKind",
    "DiffusionModel",
    "JobStage",
    "JobStatus",
    "ModelFamily",
    "ModelVersion",
    "OptOutRequest",
    "RequestStatus",
    "Role",
]
